package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fedigate/fedigate/internal/copybuf"
)

// relay sends the client the response, as httputil.ReverseProxy would,
// and returns the connection to the pool when the body was read to its
// end and nothing more came. While a body still has to come from the
// backend, the client leaving ends the copy.
func (c *h1Client) relay(w http.ResponseWriter, r *http.Request, pc *h1Conn, resp *http.Response) {
	stop := noWatch
	if !bodyBuffered(resp, pc.br) {
		pc.setReadDeadline(time.Time{}) // a body may take its time; the client leaving ends it
		conn := pc.nc
		stop = context.AfterFunc(r.Context(), func() { _ = conn.SetDeadline(aLongTimeAgo) })
	}
	c.c.cleanResponseHeader(resp.Header)
	h := w.Header()
	for k, vv := range resp.Header {
		if old, ok := h[k]; ok {
			h[k] = append(old, vv...)
		} else {
			h[k] = vv
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if err := c.copyBody(w, resp.Body, streamed(resp)); err != nil {
		stop()
		_ = pc.nc.Close()
		var gone clientGone
		if r.Context().Err() == nil && !errors.As(err, &gone) {
			c.log.Warn("backend response cut short", "client", ClientAddr(r).String(), "path", r.URL.Path, "err", err)
		}
		panic(http.ErrAbortHandler) // the client must not take a cut body for a whole one
	}
	_ = resp.Body.Close() // at its end: fills resp.Trailer
	c.put(pc, stop() && !resp.Close && pc.br.Buffered() == 0)
	if len(resp.Trailer) > 0 {
		_ = http.NewResponseController(w).Flush() // chunked, so the trailers can follow
	}
	for k, vv := range resp.Trailer {
		if len(resp.Trailer) != announced {
			k = http.TrailerPrefix + k
		}
		for _, v := range vv {
			h.Add(k, v)
		}
	}
}

func noWatch() bool { return true }

// bodyBuffered reports whether the whole body is already in br (or there
// is none).
func bodyBuffered(resp *http.Response, br *bufio.Reader) bool {
	return resp.Body == http.NoBody || (resp.ContentLength >= 0 && int64(br.Buffered()) >= resp.ContentLength)
}

// streamed reports whether each piece of the body is passed on at once:
// server-sent events and bodies of unknown length, as ReverseProxy does.
func streamed(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// clientGone is a failed write to the client: it left, which is not the
// backend's fault and not worth a warning.
type clientGone struct{ error }

func (c *h1Client) copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	bp := copybuf.Shared.Borrow()
	defer copybuf.Shared.Return(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return clientGone{werr}
			}
			if rc != nil {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

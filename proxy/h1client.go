package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Client proxies the requests that make up most of a fediverse server's
// traffic (GET and HEAD without a body) to backend.web over pooled
// HTTP/1.1 connections, in the handler's own goroutine: the request is
// written, the response read and copied, and the connection returned to
// the pool, with no hand-off to a connection's reader and writer
// goroutines as http.Transport does. Everything else (bodies, upgrades,
// https backends, Expect) goes through httputil.ReverseProxy; both send
// the backend the same request and relay the same response.
type h1Client struct {
	addr     string // host:port to dial
	host     string // backend.web's host, for a request without Host
	dialer   net.Dialer
	timeout  time.Duration // to the response headers; 0 = none
	idleTime time.Duration // an idle connection older than this is closed
	maxIdle  int
	bufs     sync.Pool // *[]byte body copy buffers
	log      *slog.Logger
	onError  func(http.ResponseWriter, *http.Request, error)
	dropHSTS bool // the edge sets its own

	mu     sync.Mutex
	idle   []*h1Conn // most recently used last
	closed bool
	reaper *time.Timer // armed while idle connections exist
}

// h1Conn is one pooled backend connection with its buffers.
type h1Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// maxInformational is how many 1xx responses one request may get before
// the final one; http.Transport allows as many.
const maxInformational = 5

// eligible reports whether r takes the fast path: GET or HEAD, no body,
// no upgrade and no Expect.
func (c *h1Client) eligible(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.ContentLength != 0 {
		return false
	}
	// HTTP/1 gives a bodiless request http.NoBody (the edge leaves it
	// unwrapped); HTTP/2 a stream body that a Content-Length of 0 keeps
	// empty. HTTP/3 goes the general way.
	if r.ProtoMajor != 2 && r.Body != nil && r.Body != http.NoBody {
		return false
	}
	if r.ProtoMajor > 2 {
		return false
	}
	h := r.Header
	_, up := h["Upgrade"]
	_, exp := h["Expect"]
	return !up && !exp
}

// serve proxies r, which eligible accepted.
func (c *h1Client) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := c.checkHeaders(r); err != nil {
		c.onError(w, r, err)
		return
	}
	pc, resp, stop, err := c.roundTrip(ctx, w, r)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		c.onError(w, r, err)
		return
	}
	c.relay(w, r, pc, resp, stop)
}

// roundTrip writes r on a pooled (or new) connection and reads the final
// response's header. A pooled connection the backend closed while idle
// fails before any byte of an answer; the request is then sent once more
// on a new connection, which GET and HEAD allow. Until stop is called,
// the client going away (the request's context ending) ends the exchange;
// stop reports false if that happened.
func (c *h1Client) roundTrip(ctx context.Context, w http.ResponseWriter, r *http.Request) (pc *h1Conn, resp *http.Response, stop func() bool, err error) {
	for attempt := 0; ; attempt++ {
		reused := false
		if attempt == 0 {
			pc = c.get()
			reused = pc != nil
		}
		if pc == nil {
			if pc, err = c.dial(ctx); err != nil {
				return nil, nil, nil, err
			}
		}
		conn := pc.nc
		stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
		var answered bool
		resp, answered, err = c.exchange(w, pc, r)
		if err == nil {
			return pc, resp, stop, nil
		}
		stop()
		_ = conn.Close()
		pc = nil
		if !reused || answered || ctx.Err() != nil || !retryable(err) {
			return nil, nil, nil, err
		}
	}
}

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes the request and reads the response header, relaying
// informational responses. answered reports whether any byte came back.
func (c *h1Client) exchange(w http.ResponseWriter, pc *h1Conn, r *http.Request) (resp *http.Response, answered bool, err error) {
	if c.timeout > 0 {
		_ = pc.nc.SetDeadline(time.Now().Add(c.timeout))
	}
	c.writeRequest(pc.bw, r)
	if err := pc.bw.Flush(); err != nil {
		return nil, false, err
	}
	if _, err := pc.br.Peek(1); err != nil {
		return nil, false, err
	}
	for n := 0; ; n++ {
		resp, err = http.ReadResponse(pc.br, r)
		if err != nil {
			return nil, true, err
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || n == maxInformational {
			return nil, true, errors.New("proxy: backend sent an unexpected informational response")
		}
		relayInformational(w, resp)
	}
	if c.timeout > 0 {
		_ = pc.nc.SetDeadline(time.Time{})
		if err := r.Context().Err(); err != nil { // its deadline may have just been cleared
			return nil, true, err
		}
	}
	return resp, true, nil
}

// retryable reports whether err means a pooled connection was found closed
// by the backend.
func retryable(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// writeRequest writes the request line and header as http.Transport would
// after httputil.ReverseProxy and rewriteTo prepared them: Host, path and
// query unchanged, hop-by-hop and client-written forwarding headers out,
// the edge's X-Forwarded-For, X-Real-IP and X-Forwarded-Proto in.
func (c *h1Client) writeRequest(bw *bufio.Writer, r *http.Request) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	if r.Host != "" {
		bw.WriteString(r.Host)
	} else {
		bw.WriteString(c.host)
	}
	bw.WriteString("\r\n")
	for k, vv := range r.Header {
		if skipForwarded(k) {
			continue
		}
		for _, v := range vv {
			if k == "User-Agent" && v == "" {
				continue
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(strings.TrimSpace(v))
			bw.WriteString("\r\n")
		}
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	client := ClientAddr(r).String()
	bw.WriteString("X-Forwarded-For: ")
	bw.WriteString(client)
	bw.WriteString("\r\nX-Real-Ip: ")
	bw.WriteString(client)
	bw.WriteString("\r\nX-Forwarded-Proto: https\r\n\r\n")
}

// skipForwarded reports whether the request header k is not forwarded as
// it is: hop-by-hop headers, framing the client chose, and forwarding
// headers the edge writes itself.
func skipForwarded(k string) bool {
	switch k {
	case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Te",
		"Connection", "Proxy-Connection", "Keep-Alive", "Upgrade",
		"Proxy-Authenticate", "Proxy-Authorization", "Proxy",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "Client-Ip":
		return true
	}
	return false
}

// checkHeaders refuses what http.Transport refuses to send: an invalid
// Host, header name or value (a CR or LF would split the request).
func (c *h1Client) checkHeaders(r *http.Request) error {
	if !httpguts.ValidHostHeader(r.Host) {
		return errors.New("proxy: invalid Host header")
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return errors.New("proxy: invalid header field name")
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return errors.New("proxy: invalid header field value")
			}
		}
	}
	return nil
}

// relayInformational passes a 1xx response (103 Early Hints) on to the
// client, keeping the headers the edge already set for the final one.
func relayInformational(w http.ResponseWriter, resp *http.Response) {
	h := w.Header()
	saved := maps.Clone(h)
	clear(h)
	maps.Copy(h, resp.Header)
	w.WriteHeader(resp.StatusCode)
	clear(h)
	maps.Copy(h, saved)
}

// relay sends the client the response, as httputil.ReverseProxy would,
// and returns the connection to the pool when the body was read to its
// end and nothing more came.
func (c *h1Client) relay(w http.ResponseWriter, r *http.Request, pc *h1Conn, resp *http.Response, stop func() bool) {
	removeHopHeaders(resp.Header)
	if c.dropHSTS {
		delete(resp.Header, "Strict-Transport-Security")
	}
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
		if r.Context().Err() == nil {
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

// streamed reports whether each piece of the body is passed on at once:
// server-sent events and bodies of unknown length, as ReverseProxy does.
func streamed(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

func (c *h1Client) copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
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

// removeHopHeaders drops a response's hop-by-hop headers and those its
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, k := range responseHopHeaders {
		delete(h, k)
	}
}

var responseHopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

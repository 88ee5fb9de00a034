package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
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
	addr      string // host:port to dial
	host      string // backend.web's host, for a request without Host
	dialer    net.Dialer
	timeout   time.Duration // to the response headers; 0 = none
	idleTime  time.Duration // backend.idle_timeout: an idle connection older than this is closed
	maxIdle   int           // backend.max_idle_conns
	maxHeader int64         // backend.max_response_header_bytes
	log       *slog.Logger
	c         *chain // the policy: error answers, response headers

	mu     sync.Mutex
	idle   []*h1Conn // most recently used last
	closed bool
	reaper *time.Timer // armed while idle connections exist
}

// h1Conn is one pooled backend connection with its buffers.
type h1Conn struct {
	nc     net.Conn
	lr     limitReader // between nc and br: bounds the response header
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	peek   idlePeek  // bytes the backend sent while the connection was idle
	rdl    time.Time // the read deadline set on nc (zero: none)
}

// setReadDeadline sets nc's read deadline to t (zero: none), unless it is
// set to t already.
func (pc *h1Conn) setReadDeadline(t time.Time) {
	if !t.Equal(pc.rdl) {
		pc.rdl = t
		_ = pc.nc.SetReadDeadline(t)
	}
}

// limitReader reads from a connection; while left is positive it is a
// budget (the response header's bound) that, once spent, fails the read.
type limitReader struct {
	nc   net.Conn
	left int64 // < 0: no bound
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left == 0 {
		return 0, errBackendHeaderTooLarge
	}
	if l.left > 0 && int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.nc.Read(p)
	if l.left > 0 {
		l.left -= int64(n)
	}
	return n, err
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
	size, err := c.checkHeaders(r)
	if err != nil {
		c.c.proxyError(w, r, err)
		return
	}
	pc, resp, err := c.roundTrip(ctx, w, r, size)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		c.c.proxyError(w, r, err)
		return
	}
	c.relay(w, r, pc, resp)
}

// roundTrip writes r on a pooled (or new) connection and reads the final
// response's header. A pooled connection the backend closed while idle
// fails before any byte of an answer; the request is then sent once more
// on a new connection, which GET and HEAD allow.
func (c *h1Client) roundTrip(ctx context.Context, w http.ResponseWriter, r *http.Request, size int) (pc *h1Conn, resp *http.Response, err error) {
	for attempt := 0; ; attempt++ {
		reused := false
		if attempt == 0 {
			pc = c.get()
			reused = pc != nil
		}
		if pc == nil {
			if pc, err = c.dial(ctx); err != nil {
				return nil, nil, err
			}
		}
		var answered bool
		resp, answered, err = c.exchange(ctx, w, pc, r, size)
		if err == nil {
			return pc, resp, nil
		}
		_ = pc.nc.Close()
		pc = nil
		if !reused || answered || ctx.Err() != nil || !retryable(err) {
			return nil, nil, err
		}
	}
}

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// pollSlice is how often a wait for the backend's answer looks whether
// the client is still there; a client that left ends the wait within it.
// (Watching the request's context instead costs an allocation and a lock
// per request.)
const pollSlice = time.Second

// bigRequestHeader is the request header size past which writing it may
// block on a backend that does not read, so it gets a write deadline.
const bigRequestHeader = 16 << 10

// exchange writes the request and reads the response header, relaying
// informational responses, within backend.response_timeout. answered
// reports whether any byte came back.
func (c *h1Client) exchange(ctx context.Context, w http.ResponseWriter, pc *h1Conn, r *http.Request, size int) (resp *http.Response, answered bool, err error) {
	start := time.Now()
	if size > bigRequestHeader && c.timeout > 0 {
		_ = pc.nc.SetWriteDeadline(start.Add(c.timeout))
		defer pc.nc.SetWriteDeadline(time.Time{})
	}
	c.writeRequest(pc.bw, r)
	if err := pc.bw.Flush(); err != nil {
		return nil, false, err
	}
	pc.lr.left = c.maxHeader // for every header block until the final one
	for n := 0; ; n++ {
		slow, err := c.awaitAnswer(ctx, pc, start)
		if err != nil {
			return nil, n > 0, err
		}
		stop := noWatch
		if slow {
			// the rest of the header may take until the response
			// timeout: a client that leaves meanwhile ends the wait
			conn := pc.nc
			stop = context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(aLongTimeAgo) })
		}
		resp, err = http.ReadResponse(pc.br, r)
		if slow {
			stop()
			pc.rdl = aLongTimeAgo // may have been set by the watch: set anew below
		}
		if err != nil {
			if errors.Is(err, errBackendHeaderTooLarge) {
				err = errBackendHeaderTooLarge
			}
			return nil, true, err
		}
		if resp.StatusCode >= 200 || (resp.StatusCode == http.StatusSwitchingProtocols && upgradeOf(r) != "") {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || n == maxInformational {
			return nil, true, errors.New("proxy: backend sent an unexpected informational response")
		}
		c.c.relayInformational(w, r, resp.StatusCode, resp.Header)
	}
	pc.lr.left = -1
	if pc.rdl.Equal(aLongTimeAgo) {
		pc.setReadDeadline(time.Time{})
	}
	// Otherwise the last slice's deadline stays: the next exchange on the
	// connection can take it as it is, and a body still to come clears
	// it (relay).
	return resp, true, nil
}

// awaitAnswer waits until a response header is buffered (or its first
// byte came and the rest may take until the response timeout: slow), in
// slices of pollSlice so that a client that left is noticed. A deadline
// already set that ends in the second half of the slice serves as it is
// (setting one costs as much as a small request's parsing).
func (c *h1Client) awaitAnswer(ctx context.Context, pc *h1Conn, start time.Time) (slow bool, err error) {
	var end time.Time // zero: no response timeout
	if c.timeout > 0 {
		end = start.Add(c.timeout)
	}
	for {
		now := time.Now()
		next := now.Add(pollSlice)
		if !end.IsZero() && end.Before(next) {
			next = end
		}
		if pc.rdl.IsZero() || pc.rdl.After(next) || pc.rdl.Before(now.Add(pollSlice/2)) {
			pc.setReadDeadline(next)
		}
		_, err := pc.br.Peek(1)
		if err == nil {
			if !headerBuffered(pc.br) {
				pc.setReadDeadline(end)
				return true, nil
			}
			return false, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || (!end.IsZero() && !time.Now().Before(end)) {
			return false, err
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
}

// headerBuffered reports whether a whole response header is in br.
func headerBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n"))
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
		if !forwardRequestHeader(k) {
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
	if up := upgradeOf(r); up != "" { // a websocket of the streaming route
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.WriteString(up)
		bw.WriteString("\r\n")
	}
	client := ClientAddr(r)
	bw.WriteString(hdrForwardedFor + ": ")
	writeAddr(bw, client)
	bw.WriteString("\r\n" + hdrRealIP + ": ")
	writeAddr(bw, client)
	bw.WriteString("\r\n" + hdrForwardedProto + ": https\r\n\r\n")
}

// writeAddr writes a as a.String() would, without building the string.
func writeAddr(bw *bufio.Writer, a netip.Addr) {
	if !a.IsValid() {
		bw.WriteString(a.String())
		return
	}
	bw.Write(a.AppendTo(bw.AvailableBuffer()))
}

// checkHeaders refuses what http.Transport refuses to send: an invalid
// Host, header name or value (a CR or LF would split the request). It
// returns the header's size.
func (c *h1Client) checkHeaders(r *http.Request) (int, error) {
	if !httpguts.ValidHostHeader(r.Host) {
		return 0, errors.New("proxy: invalid Host header")
	}
	size := len(r.URL.Path) + len(r.URL.RawQuery) + len(r.Host)
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return 0, errors.New("proxy: invalid header field name")
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return 0, errors.New("proxy: invalid header field value")
			}
			size += len(k) + len(v) + 4
		}
	}
	return size, nil
}

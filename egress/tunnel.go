package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedigate/fedigate/internal/copybuf"
	"github.com/fedigate/fedigate/internal/httplog"
)

// connect answers CONNECT: the guard and the upstream first, then 200 and
// a byte pipe both ways until either side closes or both are idle.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	dest := r.Host
	ev := Event{Kind: "connect", Method: r.Method, Dest: dest}
	release, v := p.admit(hostOf(dest))
	if v != Allowed {
		p.refuse(w, ev, &Refusal{Verdict: v, Dest: dest, Reason: "too many connections"}, start)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.ConnectTimeout)
	upConn, t, err := p.dial(ctx, "tcp", dest)
	cancel()
	if err != nil {
		p.refuse(w, ev, err, start)
		return
	}
	ev.Resolved = t.String()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upConn.Close()
		http.Error(w, "fedigate egress: CONNECT needs HTTP/1.1", http.StatusBadRequest)
		return
	}
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		client.Close()
		upConn.Close()
		return
	}
	// Bytes the client sent right behind the request (a TLS hello) go first.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := upConn.Write(b); err != nil {
			client.Close()
			upConn.Close()
			return
		}
		ev.BytesUp += int64(n)
	}
	id := p.tunnels.add(client, upConn)
	up, down := pipe(client, upConn, p.cfg.IdleTimeout)
	p.tunnels.remove(id)
	ev.Verdict, ev.BytesUp, ev.BytesDown, ev.Duration = Allowed, ev.BytesUp+up, down, time.Since(start)
	p.record(ev, nil)
}

func (p *Proxy) refuse(w http.ResponseWriter, ev Event, err error, start time.Time) {
	code, v, reason := statusOf(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, "fedigate egress: "+reason, code)
	ev.Verdict, ev.Duration = v, time.Since(start)
	p.record(ev, err)
}

// pipe copies both ways until both directions end, or nothing moved in
// either direction for idle. It returns the bytes sent up and down.
func pipe(client, upstream net.Conn, idle time.Duration) (int64, int64) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var up, down int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); up = copyIdle(upstream, client, idle, &last) }()
	go func() { defer wg.Done(); down = copyIdle(client, upstream, idle, &last) }()
	wg.Wait()
	client.Close()
	upstream.Close()
	return up, down
}

// copyIdle copies src to dst: on the TCP connections themselves when both
// are at hand (the kernel splices, no copy through user space), else
// through a buffer.
func copyIdle(dst, src net.Conn, idle time.Duration, last *atomic.Int64) int64 {
	if d, s := rawTCP(dst), rawTCP(src); d != nil && s != nil {
		return spliceIdle(d, s, idle, last)
	}
	return bufferIdle(dst, src, idle, last)
}

// spliceIdle copies in rounds of at most idle each. A round that ends in a
// timeout ends the tunnel only when neither direction moved a byte for
// idle, so an idle tunnel closes after between idle and twice idle.
func spliceIdle(dst, src *net.TCPConn, idle time.Duration, last *atomic.Int64) int64 {
	var total int64
	for {
		deadline := time.Now().Add(idle)
		_ = src.SetReadDeadline(deadline)
		_ = dst.SetWriteDeadline(deadline)
		n, err := dst.ReadFrom(src)
		total += n
		if n > 0 {
			last.Store(time.Now().UnixNano())
		}
		if err == nil { // EOF from src
			_ = dst.CloseWrite()
			return total
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
			continue
		}
		closeBoth(dst, src)
		return total
	}
}

// bufferIdle copies src to dst. A read deadline that passes while the other
// direction moved recently is extended; when both were idle, the tunnel
// ends. EOF half-closes dst so the other direction can finish.
func bufferIdle(dst, src net.Conn, idle time.Duration, last *atomic.Int64) int64 {
	bp := copybuf.Shared.Borrow()
	defer copybuf.Shared.Return(bp)
	buf := *bp
	var n int64
	for {
		_ = src.SetReadDeadline(time.Now().Add(idle))
		r, err := src.Read(buf)
		if r > 0 {
			last.Store(time.Now().UnixNano())
			_ = dst.SetWriteDeadline(time.Now().Add(idle))
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				closeBoth(dst, src)
				return n
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
				continue
			}
			if errors.Is(err, io.EOF) {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
					return n
				}
			}
			closeBoth(dst, src)
			return n
		}
	}
}

func closeBoth(a, b net.Conn) { a.Close(); b.Close() }

// tunnelSet tracks open tunnels so Shutdown can close them.
type tunnelSet struct {
	mu    sync.Mutex
	next  int
	open  map[int][2]net.Conn
	empty *sync.Cond
}

func (s *tunnelSet) add(a, b net.Conn) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = map[int][2]net.Conn{}
		s.empty = sync.NewCond(&s.mu)
	}
	s.next++
	s.open[s.next] = [2]net.Conn{a, b}
	return s.next
}

func (s *tunnelSet) remove(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, id)
	if len(s.open) == 0 {
		s.empty.Broadcast()
	}
}

// closeAll waits for the tunnels to end until ctx is done, then closes
// those still open.
func (s *tunnelSet) closeAll(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.mu.Lock()
		for len(s.open) > 0 {
			s.empty.Wait()
		}
		s.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	for _, c := range s.open {
		c[0].Close()
		c[1].Close()
	}
	s.mu.Unlock()
	<-done
}

// newForwarder proxies absolute-URI requests: the connection is made by
// the guarded dialer; Proxy-* headers never leave.
func (p *Proxy) newForwarder() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = pr.In.URL
			pr.Out.Host = pr.In.Host
			for k := range pr.Out.Header {
				if strings.HasPrefix(k, "Proxy-") || k == "Forwarded" {
					delete(pr.Out.Header, k)
				}
			}
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, t, err := p.dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &checkedConn{Conn: c, resolved: t.String()}, nil
			},
			ForceAttemptHTTP2:     true,
			DisableCompression:    true,
			TLSHandshakeTimeout:   p.cfg.ConnectTimeout,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       p.cfg.IdleTimeout,
			MaxIdleConnsPerHost:   4,
		},
		// Proxy-* headers belong to the hop between the backend and this
		// proxy: none from the destination reaches the backend either.
		ModifyResponse: func(resp *http.Response) error {
			for k := range resp.Header {
				if strings.HasPrefix(k, "Proxy-") {
					delete(resp.Header, k)
				}
			}
			return nil
		},
		FlushInterval: -1,
		BufferPool:    copybuf.Shared,
		ErrorLog:      httplog.ErrorLog(p.log, "egress"),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := r.Context().Value(forwardKey{}).(*forwardState)
			st.err = err
			code, v, reason := statusOf(err)
			st.verdict = v
			http.Error(w, "fedigate egress: "+reason, code)
		},
	}
}

type forwardKey struct{}

type forwardState struct {
	verdict  Verdict
	resolved string // the checked address of the connection used
	err      error
}

// checkedConn is a forwarder connection that remembers the address the
// guard approved, so a request on a pooled connection logs it too.
type checkedConn struct {
	net.Conn
	resolved string
}

// resolvedOf is the checked address under a connection the transport used
// (its own, or the TLS connection on top of it).
func resolvedOf(c net.Conn) string {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*checkedConn); ok {
		return cc.resolved
	}
	return ""
}

// countingBody counts the bytes of a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n += int64(n)
	return n, err
}

// countingWriter counts the bytes of a response.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// forward proxies one absolute-URI request.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	dest := r.URL.Host
	if r.URL.Port() == "" {
		port := "80"
		if r.URL.Scheme == "https" {
			port = "443"
		}
		dest = net.JoinHostPort(r.URL.Hostname(), port)
	}
	ev := Event{Kind: "forward", Method: r.Method, Dest: dest}
	release, v := p.admit(hostOf(dest))
	if v != Allowed {
		p.refuse(w, ev, &Refusal{Verdict: v, Dest: dest, Reason: "too many connections"}, start)
		return
	}
	defer release()
	st := &forwardState{}
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	cw := &countingWriter{ResponseWriter: w}
	ctx := context.WithValue(r.Context(), forwardKey{}, st)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { st.resolved = resolvedOf(info.Conn) },
	})
	p.forwardP.ServeHTTP(cw, r.WithContext(ctx))
	ev.Verdict, ev.Resolved, ev.BytesUp, ev.BytesDown, ev.Duration = st.verdict, st.resolved, body.n, cw.n, time.Since(start)
	p.record(ev, st.err)
}

package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/fedigate/fedigate/configs"
)

// listener is one bound address and the server on it.
type listener struct {
	ln  net.Listener
	srv *http.Server
	h3  *quicListener // nil = no HTTP/3 on this address
}

type connKey struct{}

func (e *Edge) newServer(c *chain, h http.Handler) *http.Server {
	s := c.cfg.Server
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    serverHeaderLimit(s),
		ErrorLog:          c.errorLog,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, conn)
		},
		ConnState: func(conn net.Conn, cs http.ConnState) {
			if cs == http.StateHijacked {
				e.state.conns.add(conn)
			}
		},
	}
}

// serverHeaderLimit is the header size the servers (HTTP/1.1, 2, 3)
// read before they refuse a request themselves: twice
// server.max_header_bytes, so that the edge, past the client decision,
// answers the usual oversized request (431 in the client's format, logged
// with the real client) and Go's servers only the grossly oversized.
func serverHeaderLimit(s configs.Server) int {
	if s.MaxHeaderBytes <= 0 {
		return http.DefaultMaxHeaderBytes
	}
	return 2 * int(s.MaxHeaderBytes)
}

// bindMain binds server.listen (TCP) with TLS; certificates come from the
// current chain at each handshake, so a reload can change them.
func (e *Edge) bindMain(c *chain) (*listener, error) {
	ln, err := net.Listen("tcp", c.cfg.Server.Listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: binding server.listen %q: %w", c.cfg.Server.Listen, err)
	}
	base := e.tlsBase()
	srv := e.newServer(c, http.HandlerFunc(e.serve))
	srv.TLSConfig = base
	l := &listener{ln: tls.NewListener(ln, base), srv: srv}
	if c.cfg.Server.HTTP3 {
		e.addQUIC(c, l)
	}
	return l, nil
}

// addQUIC opens HTTP/3 beside l; when the UDP port cannot be opened it
// logs one warning and l serves TCP alone.
func (e *Edge) addQUIC(c *chain, l *listener) {
	q, err := e.bindQUIC(c, l.ln.Addr().(*net.TCPAddr))
	if err != nil {
		c.log.Warn("HTTP/3 off: serving HTTP/1.1 and HTTP/2 only", "err", err)
		return
	}
	l.h3 = q
}

// tlsBase is the TLS config of the listeners: TLS 1.2+, certificates and
// ALPN from the current chain at each handshake, so a reload can change
// them.
func (e *Edge) tlsBase() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return e.cur.Load().tls, nil
		},
	}
}

func (e *Edge) bindRedirect(c *chain) (*listener, error) {
	ln, err := net.Listen("tcp", c.cfg.Server.RedirectListen)
	if err != nil {
		return nil, fmt.Errorf("proxy: binding server.redirect_listen %q: %w", c.cfg.Server.RedirectListen, err)
	}
	return &listener{ln: ln, srv: e.newServer(c, http.HandlerFunc(e.serveRedirect))}, nil
}

// serve serves l in the background; for the main listener (st != nil) it
// records the bound port and the Alt-Svc announcement.
func (l *listener) serve(c *chain, st *edgeState) {
	if st != nil {
		st.listenPort.Store(int32(l.ln.Addr().(*net.TCPAddr).Port))
		l.announce(st)
	}
	go func() {
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("listener stopped", "addr", l.ln.Addr().String(), "err", err)
		}
	}()
	if l.h3 != nil {
		l.h3.serve(c)
	}
}

// announce sets the Alt-Svc value the edge adds to HTTP/1.1 and HTTP/2
// answers: l's HTTP/3 port, or none.
func (l *listener) announce(st *edgeState) {
	v := ""
	if l.h3 != nil {
		v = l.h3.altSvc()
	}
	st.altSvc.Store(&v)
}

func (l *listener) close() {
	_ = l.ln.Close()
	if l.h3 != nil {
		l.h3.close()
	}
}

// shutdown stops l gracefully, then closes what ctx did not let finish.
func (l *listener) shutdown(ctx context.Context) {
	done := make(chan struct{})
	if l.h3 != nil {
		go func() { l.h3.shutdown(ctx); close(done) }()
	} else {
		close(done)
	}
	if err := l.srv.Shutdown(ctx); err != nil {
		_ = l.srv.Close()
	}
	<-done
}

// serveRedirect answers plain HTTP with 308 to the same host, path and
// query over HTTPS.
func (c *chain) serveRedirect(w http.ResponseWriter, r *http.Request) {
	if !c.hostAllowed(r.Host) || r.Host == "" {
		c.edgeError(w, r, http.StatusMisdirectedRequest, "misdirected request: unknown host")
		return
	}
	host := hostOnly(r.Host)
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil && host[0] != '[' {
		host = "[" + host + "]"
	}
	if p := int(c.edge.listenPort.Load()); p != 0 && p != 443 {
		host += ":" + strconv.Itoa(p)
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.WriteHeader(http.StatusPermanentRedirect)
}

// connTracker holds hijacked connections (websockets) so Shutdown can
// close them.
type connTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (t *connTracker) add(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = map[net.Conn]struct{}{}
	}
	t.conns[c] = struct{}{}
}

func (t *connTracker) forget(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		_ = c.Close()
		delete(t.conns, c)
	}
}

// slogWriter sends net/http's own error log (TLS handshake errors, bad
// requests) to the logger at Debug.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http server", "msg", string(p))
	return len(p), nil
}

// Package proxy owns fedigate's edge: the HTTPS listeners (TCP for
// HTTP/1.1 and HTTP/2, UDP for HTTP/3, the plain-HTTP redirect), the host filter, the
// client address decided once per request (ClientAddr), routing to the
// web and streaming backends, static files from backend.static_root, gzip,
// and the access log.
//
// Certificates come from package certs through Options.TLSConfig; rate
// limits and the sign-up gate are Options.Guards; cmd/fedigate wires them.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/accesslog"
)

// Options are the parts of the edge that are not in the config file.
type Options struct {
	// Logger receives the access log (Info, one line per request) and
	// errors; nil = slog.Default().
	Logger *slog.Logger
	// TLSConfig holds the certificates (Certificates or GetCertificate);
	// required. The edge uses a clone with TLS 1.2+ and h2/http1.1 ALPN.
	TLSConfig *tls.Config
	// Guards run in order after the client address is decided and before
	// routing (rate limit, sign-up gate); nil = none.
	Guards []func(http.Handler) http.Handler
	// GuardNames name the Guards, in order. A request a guard answers
	// itself (a 429, a refused sign-up) is logged and observed with
	// route = its name; nil or missing = "guard1", "guard2"...
	GuardNames []string
	// WebCache wraps the call to backend.web alone (never streaming,
	// websockets or static files), after the guards; nil: no cache.
	WebCache func(http.Handler) http.Handler
	// WrapRedirect wraps the redirect_listen handler (ACME HTTP-01);
	// nil = identity.
	WrapRedirect func(http.Handler) http.Handler
	// Observe is called once per request with the route ("web",
	// "streaming", "static", or "edge" when the edge answered itself), the
	// status and the duration; nil = none.
	Observe func(route string, status int, d time.Duration)
	// BodyIdleTimeout is the longest a request body may pause between two
	// pieces before the request is answered 408 and the connection closed
	// (a client trickling a body would hold the request open forever);
	// 0 = 60 s, nginx's client_body_timeout.
	BodyIdleTimeout time.Duration
	// SendTimeout is the longest one write of a response may block on a
	// client that does not read before the request is cut and its
	// connection closed; 0 = 60 s, nginx's send_timeout. Websockets, once
	// upgraded, are not bound by it.
	SendTimeout time.Duration

	// noLean sends every request through ReverseProxy (tests and the A/B
	// benchmark of the two backend paths).
	noLean bool

	// AccessLog receives the access log instead of Logger: buffered, no
	// allocation, never blocking a request; nil = Logger at level Info.
	AccessLog *accesslog.Writer
}

// Edge is the HTTPS edge. New builds it without binding; Start binds.
type Edge struct {
	mu       sync.Mutex
	cur      atomic.Pointer[chain]
	state    *edgeState
	main     *listener
	redirect *listener
	started  bool
	closed   bool
}

// New validates cfg and opts and builds the handler; it binds nothing.
func New(cfg *configs.Config, opts Options) (*Edge, error) {
	st := &edgeState{}
	st.streamCtx, st.streamCancel = context.WithCancel(context.Background())
	c, err := buildChain(cfg, opts, st)
	if err != nil {
		st.streamCancel()
		return nil, err
	}
	e := &Edge{state: st}
	e.cur.Store(c)
	return e, nil
}

// Handler returns the full chain (host filter, client address, guards,
// routing), for tests and benchmarks.
func (e *Edge) Handler() http.Handler { return http.HandlerFunc(e.serve) }

func (e *Edge) serve(w http.ResponseWriter, r *http.Request) { e.cur.Load().ServeHTTP(w, r) }

func (e *Edge) serveRedirect(w http.ResponseWriter, r *http.Request) {
	e.cur.Load().redirect.ServeHTTP(w, r)
}

// Start binds server.listen and redirect_listen and serves in the
// background. A bind error is returned and nothing stays bound.
func (e *Edge) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return errors.New("proxy: edge already started")
	}
	c := e.cur.Load()
	m, err := e.bindMain(c)
	if err != nil {
		return err
	}
	var rd *listener
	if c.cfg.Server.RedirectListen != "" {
		if rd, err = e.bindRedirect(c); err != nil {
			m.close()
			return err
		}
	}
	e.main, e.redirect, e.started = m, rd, true
	m.serve(c, e.state)
	if rd != nil {
		rd.serve(c, nil)
	}
	c.log.Info("edge listening", "listen", m.ln.Addr().String(), "redirect_listen", c.cfg.Server.RedirectListen)
	return nil
}

// Addr returns the bound TCP address of server.listen (nil before Start).
func (e *Edge) Addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.main == nil {
		return nil
	}
	return e.main.ln.Addr()
}

// RedirectAddr returns the bound address of redirect_listen (nil when
// there is none).
func (e *Edge) RedirectAddr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.redirect == nil {
		return nil
	}
	return e.redirect.ln.Addr()
}

// Reload builds the handler of cfg fully, re-binds changed listen
// addresses (the new bound before the old is closed), then swaps. On
// error the running edge is untouched. In-flight requests finish on the
// chain they started on.
func (e *Edge) Reload(cfg *configs.Config, opts Options) error {
	nc, err := buildChain(cfg, opts, e.state)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		nc.release()
		return errors.New("proxy: edge is shut down")
	}
	old := e.cur.Load()
	var newMain, newRedirect *listener
	var oldListeners []*listener
	var oldQUIC *quicListener
	if e.started {
		if cfg.Server.Listen != old.cfg.Server.Listen {
			if newMain, err = e.bindMain(nc); err != nil {
				nc.release()
				return err
			}
		}
		if cfg.Server.RedirectListen != old.cfg.Server.RedirectListen && cfg.Server.RedirectListen != "" {
			if newRedirect, err = e.bindRedirect(nc); err != nil {
				if newMain != nil {
					newMain.close()
				}
				nc.release()
				return err
			}
		}
		if newMain != nil {
			oldListeners = append(oldListeners, e.main)
			e.main = newMain
			newMain.serve(nc, e.state)
		}
		if cfg.Server.RedirectListen != old.cfg.Server.RedirectListen {
			if e.redirect != nil {
				oldListeners = append(oldListeners, e.redirect)
			}
			e.redirect = newRedirect
			if newRedirect != nil {
				newRedirect.serve(nc, nil)
			}
		}
		if newMain == nil && cfg.Server.HTTP3 != old.cfg.Server.HTTP3 {
			if cfg.Server.HTTP3 {
				e.addQUIC(nc, e.main)
				if e.main.h3 != nil {
					e.main.h3.serve(nc)
				}
			} else if q := e.main.h3; q != nil {
				e.main.h3 = nil
				oldQUIC = q
			}
			e.main.announce(e.state)
		}
		if newMain == nil && serverSettingsChanged(old.cfg.Server, cfg.Server) {
			nc.log.Warn("server timeouts and header limits apply when server.listen is re-bound", "listen", cfg.Server.Listen)
		}
	}
	e.cur.Store(nc)
	nc.log.Info("edge reloaded", "listen", cfg.Server.Listen, "source", cfg.Source)
	grace := old.cfg.Server.ShutdownTimeout
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		for _, l := range oldListeners {
			l.shutdown(ctx)
		}
		if oldQUIC != nil {
			oldQUIC.shutdown(ctx)
		}
		// In-flight requests of the old chain finish within the grace.
		time.AfterFunc(grace, old.release)
	}()
	return nil
}

func serverSettingsChanged(a, b configs.Server) bool {
	return a.ReadHeaderTimeout != b.ReadHeaderTimeout || a.IdleTimeout != b.IdleTimeout || a.MaxHeaderBytes != b.MaxHeaderBytes
}

// Shutdown stops accepting, waits for in-flight requests (bounded by ctx),
// then closes the streams (websockets, SSE) that remain.
func (e *Edge) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ls := []*listener{e.main, e.redirect}
	e.mu.Unlock()

	errc := make(chan error, 2*len(ls))
	n := 0
	var h3Done []chan struct{}
	for _, l := range ls {
		if l == nil {
			continue
		}
		n++
		go func() { errc <- l.srv.Shutdown(ctx) }()
		if l.h3 != nil {
			n++
			done := make(chan struct{})
			h3Done = append(h3Done, done)
			go func() { errc <- l.h3.srv.Shutdown(ctx); close(done) }()
		}
	}
	e.waitDrained(ctx)
	e.state.streamCancel()
	e.state.streams.wait(ctx) // websockets get their close frames, SSE ends
	e.state.conns.closeAll()
	lingerH3(ctx, h3Done)
	for _, l := range ls {
		if l != nil && l.h3 != nil {
			l.h3.close() // the drain is over: idle QUIC connections go now
		}
	}
	var errs []error
	for range n {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range ls {
		if l != nil {
			_ = l.srv.Close()
		}
	}
	e.cur.Load().release()
	if len(errs) > 0 {
		return fmt.Errorf("proxy: shutdown: %w", errors.Join(errs...))
	}
	return nil
}

// h3Linger bounds how long, once every handler has returned, QUIC
// connections are left to their clients: an answer a handler has finished
// may still be in the connection's send buffer, and closing the
// connection drops it (the client sees H3_NO_ERROR in place of its
// answer). A client closes its connection itself once its requests are
// answered after a GOAWAY (RFC 9114 §5.2); one that does not is closed
// when the linger ends.
const h3Linger = 2 * time.Second

// lingerH3 waits for the HTTP/3 servers' graceful shutdowns (done), at
// most h3Linger and never past ctx.
func lingerH3(ctx context.Context, done []chan struct{}) {
	if len(done) == 0 {
		return
	}
	t := time.NewTimer(h3Linger)
	defer t.Stop()
	for _, d := range done {
		select {
		case <-d:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// waitDrained returns when no request but streams is in flight, or ctx ends.
func (e *Edge) waitDrained(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for e.state.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

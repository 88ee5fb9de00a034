// Package egress owns fedigate's private egress: an HTTP forward proxy on
// egress.listen (absolute-URI requests and CONNECT tunnels) that the
// backend uses for every outbound fetch, and the guarded dialer behind it,
// which fedigate's own outbound calls (captcha verification, doctor) use
// too. Every connection leaves through the SOCKS5 upstream (WARP), or
// directly only when upstream = "direct" is written out; there is no
// fallback, so an upstream that is down means 502 and no byte leaves.
//
// The guard (guard.go) turns a requested host:port into the address that is
// dialled: deny_domains first, then the name resolved by fedigate, every
// answer unmapped and classified (classify.go), and the checked IP — not
// the name — handed to the SOCKS server, so DNS rebinding cannot switch it.
//
// What the resolver reveals:
//   - "system": names are looked up by the host's resolver, so the names of
//     the instances federated with go to the host's DNS servers, from the
//     host's address (the fetches themselves still leave through WARP).
//   - "doh": lookups are DNS-over-HTTPS to doh_url, dialled through the
//     upstream: nobody learns where the server is from them.
//   - "upstream": names are handed to the SOCKS server unresolved. Nothing
//     is looked up locally, but the guard can then judge only literal
//     addresses and names: what a name resolves to is never checked, so a
//     name that resolves to a private address is reached if WARP resolves
//     it so, and DNS rebinding is not prevented.
package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/httplog"
)

// Options are a Proxy's hooks; every zero value is documented.
type Options struct {
	Logger *slog.Logger // nil = slog.Default()
	// OwnAddrs are the gateway's listeners, never reachable through the
	// egress; an unspecified address stands for every address of this
	// host. nil = none.
	OwnAddrs []netip.AddrPort
	// Resolver replaces what cfg.Resolver says (tests); nil = system:
	// net.DefaultResolver; doh: a DoHResolver through the upstream;
	// upstream: none, names go to the SOCKS server.
	Resolver Resolver
	// Observe is called once per request or tunnel; nil = none.
	Observe func(Event)
}

// Event is one egress decision, for metrics.
type Event struct {
	Kind      string // "connect" or "forward"
	Method    string // the request's method (CONNECT for a tunnel)
	Dest      string // host:port as requested
	Verdict   Verdict
	Resolved  string // the address dialled, when one was
	BytesUp   int64  // to the destination
	BytesDown int64
	Duration  time.Duration
}

// Proxy is the egress forward proxy.
type Proxy struct {
	cfg      configs.Egress
	log      *slog.Logger
	guard    *guard
	up       *upstream
	hidden   *upstream // nil without hidden_upstream
	observe  func(Event)
	srv      *http.Server
	forwardP *httputil.ReverseProxy
	slots    chan struct{} // max_conns
	hostMu   sync.Mutex
	perHost  map[string]int
	tunnels  tunnelSet
}

// New validates cfg and builds the proxy; it binds nothing.
func New(cfg configs.Egress, opts Options) (*Proxy, error) {
	p := &Proxy{cfg: cfg, log: opts.Logger, observe: opts.Observe, perHost: map[string]int{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	var err error
	if p.up, err = newUpstream(cfg.Upstream, cfg.ConnectTimeout); err != nil {
		return nil, fmt.Errorf("egress.upstream: %w", err)
	}
	if cfg.HiddenUpstream != "" {
		if p.hidden, err = newUpstream(cfg.HiddenUpstream, cfg.ConnectTimeout); err != nil || p.hidden.socks == nil {
			return nil, fmt.Errorf("egress.hidden_upstream: want socks5://host:port")
		}
	}
	if cfg.MaxConns < 1 || cfg.MaxConnsPerHost < 1 || cfg.MaxConnsPerHost > cfg.MaxConns || cfg.ConnectTimeout <= 0 || cfg.IdleTimeout <= 0 ||
		cfg.MaxHeaderBytes < configs.MinHeaderBytes {
		return nil, fmt.Errorf("egress: max_conns and max_conns_per_host (at most max_conns) must be at least 1, connect_timeout and idle_timeout positive, max_header_bytes at least %d", configs.MinHeaderBytes)
	}
	r := opts.Resolver
	if r == nil {
		switch cfg.Resolver {
		case configs.ResolverSystem:
			r = net.DefaultResolver
		case configs.ResolverDoH:
			r = &DoHResolver{URL: cfg.DoHURL, Client: p.upstreamClient(cfg.ConnectTimeout * 2)}
		case configs.ResolverUpstream:
		default:
			return nil, fmt.Errorf("egress.resolver %q: want system, doh or upstream", cfg.Resolver)
		}
	}
	p.guard = newGuard(cfg, opts.OwnAddrs, r)
	p.slots = make(chan struct{}, cfg.MaxConns)
	p.forwardP = p.newForwarder()
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    int(cfg.MaxHeaderBytes),
		ErrorLog:          httplog.ErrorLog(p.log, "egress"),
	}
	return p, nil
}

// Serve answers proxy requests on l until Shutdown.
func (p *Proxy) Serve(l net.Listener) error {
	err := p.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for requests and tunnels within ctx,
// then closes the tunnels still open.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	p.tunnels.closeAll(ctx)
	return err
}

// DialContext connects to addr through the upstream after the guard
// approved it; a refusal is a *Refusal. network must be "tcp".
func (p *Proxy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, _, err := p.dial(ctx, network, addr)
	return c, err
}

func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, target, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, target{}, &Refusal{Verdict: BadTarget, Dest: addr, Reason: "only TCP leaves through the upstream"}
	}
	// connect_timeout bounds the whole dial: lookup, SOCKS handshake and
	// the upstream's connection to the destination.
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	t, err := p.guard.check(ctx, addr)
	if err != nil {
		return nil, t, err
	}
	up := p.up
	if t.hidden {
		up = p.hidden
	}
	c, err := up.dial(ctx, t.String())
	if err != nil {
		return nil, t, &Refusal{Verdict: UpstreamError, Dest: addr, Reason: "the SOCKS upstream could not connect", Cause: err}
	}
	return c, t, nil
}

// HTTPClient is an http.Client whose every connection goes through the
// guard and the upstream (never the environment's proxy settings).
func (p *Proxy) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:         p.DialContext,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: p.cfg.ConnectTimeout,
		IdleConnTimeout:     p.cfg.IdleTimeout,
		MaxIdleConnsPerHost: 4,
	}}
}

// upstreamClient is for the DoH resolver: it dials the DoH server through
// the upstream without the guard (which would need the resolver itself).
func (p *Proxy) upstreamClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return p.up.dial(ctx, addr)
		},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: p.cfg.ConnectTimeout,
		MaxIdleConnsPerHost: 2,
	}}
}

// Ready reports whether the SOCKS upstream answers.
func (p *Proxy) Ready(ctx context.Context) error { return p.up.ready(ctx) }

// ServeHTTP dispatches CONNECT and absolute-URI requests; anything else
// is not a proxy request and gets 400.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r)
	case r.URL.IsAbs() && (r.URL.Scheme == "http" || r.URL.Scheme == "https") && r.URL.Host != "":
		p.forward(w, r)
	default:
		http.Error(w, "fedigate egress: this is a forward proxy: send an absolute-URI request or CONNECT", http.StatusBadRequest)
	}
}

// admit takes a connection slot and a slot for the destination host;
// release gives them back. A full limit answers 503 at once.
func (p *Proxy) admit(host string) (release func(), v Verdict) {
	select {
	case p.slots <- struct{}{}:
	default:
		return nil, LimitConns
	}
	host = normalName(host)
	p.hostMu.Lock()
	if p.perHost[host] >= p.cfg.MaxConnsPerHost {
		p.hostMu.Unlock()
		<-p.slots
		return nil, LimitHost
	}
	p.perHost[host]++
	p.hostMu.Unlock()
	return func() {
		p.hostMu.Lock()
		if p.perHost[host]--; p.perHost[host] == 0 {
			delete(p.perHost, host)
		}
		p.hostMu.Unlock()
		<-p.slots
	}, Allowed
}

// statusOf maps a refusal to the client's status: the public half.
func statusOf(err error) (int, Verdict, string) {
	var ref *Refusal
	if errors.As(err, &ref) {
		switch ref.Verdict {
		case BadTarget:
			return http.StatusBadRequest, ref.Verdict, ref.Reason
		case DeniedDomain, DeniedPrivate, DeniedOwn, DeniedHidden:
			return http.StatusForbidden, ref.Verdict, ref.Reason
		case LimitConns, LimitHost:
			return http.StatusServiceUnavailable, ref.Verdict, ref.Reason
		}
		if isTimeout(err) {
			return http.StatusGatewayTimeout, ref.Verdict, "connect timeout"
		}
		return http.StatusBadGateway, ref.Verdict, ref.Reason
	}
	if isTimeout(err) {
		return http.StatusGatewayTimeout, UpstreamError, "timeout"
	}
	return http.StatusBadGateway, UpstreamError, "the destination did not answer"
}

// isTimeout: the context's deadline passed, or a connection's deadline
// did (the SOCKS dialer turns the first into the second).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// record writes the one log line of a decision and calls Observe.
func (p *Proxy) record(e Event, err error) {
	attrs := []any{"kind", e.Kind, "method", e.Method, "dest", e.Dest, "verdict", e.Verdict.String(), "resolved", e.Resolved,
		"bytes_up", e.BytesUp, "bytes_down", e.BytesDown, "duration", e.Duration}
	if err != nil {
		p.log.Info("egress refused", append(attrs, "err", err.Error())...)
	} else {
		p.log.Info("egress", attrs...)
	}
	if p.observe != nil {
		p.observe(e)
	}
}

func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

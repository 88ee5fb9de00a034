package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"

	"github.com/fedigate/fedigate/admin"
	"github.com/fedigate/fedigate/cache"
	"github.com/fedigate/fedigate/certs"
	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/egress"
	"github.com/fedigate/fedigate/federation"
	"github.com/fedigate/fedigate/internal/accesslog"
	"github.com/fedigate/fedigate/proxy"
	"github.com/fedigate/fedigate/ratelimit"
	"github.com/fedigate/fedigate/signupgate"
)

// gateway is every part of one running fedigate, built from one config.
// Building binds nothing; start binds; reload builds the new parts fully,
// swaps them in, and only then closes the old ones. What each part keeps
// across a reload (limiter counts, spent passes, certificates) is decided
// by that part's Reconfigure or PrepareReload, not here.
type gateway struct {
	cfg     *configs.Config
	log     *slog.Logger
	access  *accesslog.Writer // nil: no access lines (log.level above info)
	metrics *admin.Metrics
	certs   *certs.Source
	limiter *ratelimit.Limiter
	guard   *signupgate.Guard
	fed     *federation.Guard
	cache   *cache.Cache  // nil when [cache] is off
	egress  *egress.Proxy // nil when egress.listen = ""
	edge    *proxy.Edge
	admin   *admin.Server // nil when admin.listen = ""

	egressDone chan error
	stopCerts  chan struct{}
}

// buildGateway constructs every part for cfg, binding nothing. On error,
// what was built is closed again.
func buildGateway(cfg *configs.Config, log *slog.Logger, access *accesslog.Writer) (_ *gateway, err error) {
	g := &gateway{cfg: cfg, log: log, access: access, metrics: admin.NewMetrics(), stopCerts: make(chan struct{})}
	if access != nil {
		g.metrics.AccessLogDropped(access.Dropped)
	}
	defer func() {
		if err != nil { // every "return nil, err" below: close what was built
			_ = g.shutdown(context.Background()) // nothing is bound: this only closes
		}
	}()
	if g.certs, err = certs.New(cfg.TLS, cfg.Server.Hosts, certs.Options{Logger: log, TLSALPNPort: portOf(cfg.Server.Listen), HTTPChallengePort: portOf(cfg.Server.RedirectListen)}); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	m := g.metrics // observers capture the metrics, never g: reload rewrites g
	if cfg.Egress.Listen != "" {
		g.egress, err = egress.New(cfg.Egress, egress.Options{Logger: log, OwnAddrs: ownAddrs(cfg), Observe: func(e egress.Event) {
			m.Egress(e.Kind, e.Verdict.String(), e.BytesUp, e.BytesDown)
		}})
		if err != nil {
			return nil, fmt.Errorf("egress: %w", err)
		}
	}
	if err = g.buildChain(cfg, nil); err != nil {
		return nil, err
	}
	if g.edge, err = proxy.New(cfg, g.edgeOptions()); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	g.metrics.WatchStoreBreaker(g.limiter.StoreDown)
	if cfg.Admin.Listen != "" {
		if g.admin, err = admin.New(cfg.Admin, admin.Options{Logger: log, Metrics: g.metrics, Checks: g.readyChecks(),
			Certificates: servedCerts(g.certs)}); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	return g, nil
}

// buildChain makes the limiter and the sign-up gate: new ones, or from
// prev's by Reconfigure, which keeps what their settings allow (the counts
// of unchanged rules, spent passes and a surge while the store is the
// same).
func (g *gateway) buildChain(cfg *configs.Config, prev *gateway) (err error) {
	if err = g.buildCache(cfg, prev); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if prev != nil {
		if g.limiter, err = prev.limiter.Reconfigure(cfg.RateLimit); err != nil {
			return fmt.Errorf("ratelimit: %w", err)
		}
		// rebuilt on every reload: its limit counts in the new limiter's store
		if g.fed, err = prev.fed.Reconfigure(cfg.Federation, g.federationOptions()); err != nil {
			return err // says "federation: ..."
		}
		if g.guard, err = prev.guard.Reconfigure(cfg); err != nil {
			return fmt.Errorf("signup: %w", err)
		}
		return nil
	}
	m := g.metrics
	g.limiter, err = ratelimit.New(cfg.RateLimit, ratelimit.Options{
		Logger: g.log, ClientAddr: proxy.ClientAddr, Streaming: proxy.IsStreaming, Observe: func(d ratelimit.Decision) { observeLimit(m, d) },
	})
	if err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	if g.fed, err = federation.New(cfg.Federation, g.federationOptions()); err != nil {
		return err // says "federation: ..."
	}
	gateOpts := signupgate.Options{
		Logger: g.log, ClientAddr: proxy.ClientAddr,
		Observe: func(e signupgate.Event) {
			if e.Kind == "surge" {
				m.Surge(e.Surge)
				return
			}
			m.Gate(e.Kind, e.Reason)
		},
	}
	if g.egress != nil {
		// captcha verification leaves through the SOCKS upstream too;
		// the gate bounds each call by signup.verify_timeout
		gateOpts.HTTPClient = g.egress.HTTPClient(0)
	}
	if g.guard, err = signupgate.New(cfg, gateOpts); err != nil {
		return fmt.Errorf("signup: %w", err)
	}
	return nil
}

// federationOptions are the federation guard's hooks: its limit counts in
// g.limiter's store.
func (g *gateway) federationOptions() federation.Options {
	m := g.metrics
	return federation.Options{Logger: g.log, ClientAddr: proxy.ClientAddr, Limiter: g.limiter,
		Observe: func(e federation.Event) { m.Federation(e.Verdict.String(), e.Domain, e.Verdict != federation.Passed) }}
}

// buildCache makes the response cache, or keeps prev's (with its stored
// objects) when [cache] did not change.
func (g *gateway) buildCache(cfg *configs.Config, prev *gateway) (err error) {
	g.cache = nil
	g.metrics.CacheSource(nil)
	if !cfg.Cache.Enabled {
		return nil
	}
	m := g.metrics
	opts := cache.Options{Logger: g.log, Wait: cfg.Backend.ResponseTimeout, OnResult: func(r *http.Request, res cache.Result) {
		m.CacheResult(res.String())
		proxy.NoteCache(r, res.String())
	}}
	if prev != nil && prev.cache != nil {
		g.cache, err = prev.cache.Reconfigure(cfg.Cache, opts)
	} else {
		g.cache, err = cache.New(cfg.Cache, opts)
	}
	if err != nil {
		return err
	}
	c := g.cache
	m.CacheSource(func() admin.CacheTiers { return tiersOf(c) })
	return nil
}

func tiersOf(c *cache.Cache) admin.CacheTiers {
	mem, disk := c.Stats()
	return admin.CacheTiers{MemObjects: mem.Objects, MemBytes: mem.Bytes, MemEvictions: mem.Evictions,
		DiskObjects: disk.Objects, DiskBytes: disk.Bytes, DiskEvictions: disk.Evictions}
}

func observeLimit(m *admin.Metrics, d ratelimit.Decision) {
	outcome := "allowed"
	switch {
	case d.Err != nil && d.Result.Allowed:
		outcome = "store_error_allowed"
	case d.Err != nil:
		outcome = "store_error_denied"
	case !d.Result.Allowed:
		outcome = "limited"
	}
	m.RateLimit(d.Rule, outcome, d.Err != nil)
}

func (g *gateway) edgeOptions() proxy.Options {
	var webCache func(http.Handler) http.Handler
	if g.cache != nil {
		webCache = g.cache.Handler
	}
	return proxy.Options{
		WebCache:     webCache,
		Logger:       g.log,
		AccessLog:    g.access,
		TLSConfig:    g.certs.TLSConfig(),
		Guards:       []func(http.Handler) http.Handler{g.limiter.Middleware, g.fed.Middleware, g.guard.Middleware},
		GuardNames:   []string{"ratelimit", "federation", "signupgate"},
		WrapRedirect: g.certs.HTTPChallenge,
		Observe:      g.metrics.Request,
	}
}

// readyChecks are what /readyz probes: each dependency of this config.
func (g *gateway) readyChecks() []admin.Check {
	checks := []admin.Check{{Name: "backend_web", Probe: dialProbe(g.cfg.Backend.Web)}}
	if g.cfg.Backend.Streaming != "" {
		checks = append(checks, admin.Check{Name: "backend_streaming", Probe: dialProbe(g.cfg.Backend.Streaming)})
	}
	if g.cfg.RateLimit.Store == configs.StoreRedis {
		checks = append(checks, admin.Check{Name: "ratelimit_store", Probe: g.limiter.Ready})
	}
	if g.egress != nil {
		checks = append(checks, admin.Check{Name: "socks_upstream", Probe: g.egress.Ready})
	}
	if c := g.cache; c != nil && g.cfg.Cache.Dir != "" {
		checks = append(checks, admin.Check{Name: "cache_disk", Probe: func(context.Context) error { return c.Ready() }})
	}
	return checks
}

// dialProbe: the backend accepts TCP connections.
func dialProbe(rawURL string) func(context.Context) error {
	return func(ctx context.Context) error {
		host, err := backendHostPort(rawURL)
		if err != nil {
			return err
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// start binds every listener and serves in the background.
func (g *gateway) start() error {
	if g.egress != nil {
		ln, err := net.Listen("tcp", g.cfg.Egress.Listen)
		if err != nil {
			return fmt.Errorf("egress.listen: %w", err)
		}
		g.egressDone = make(chan error, 1)
		go func() { g.egressDone <- g.egress.Serve(ln) }()
	}
	if err := g.edge.Start(); err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	if g.admin != nil {
		if err := g.admin.Start(); err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
	}
	go watchCertExpiry(g.certs, g.metrics, g.stopCerts)
	return nil
}

// reload applies cfg to the running gateway. Every new part is built
// first (certificates read but not served, limiter and gate built, the
// edge's chain built and its listeners bound); the edge's swap is the
// last step that can fail, and only after it are the certificates
// served and the old parts closed. On any error the running gateway is
// left exactly as it was: certificates, limits, gate and routes.
func (g *gateway) reload(cfg *configs.Config) error {
	if !reflect.DeepEqual(cfg.Egress, g.cfg.Egress) || !reflect.DeepEqual(cfg.TLS, g.cfg.TLS) ||
		!reflect.DeepEqual(cfg.Admin, g.cfg.Admin) || !reflect.DeepEqual(cfg.Server.Hosts, g.cfg.Server.Hosts) {
		return errors.New("changes to [tls], [egress], [admin] or server.hosts need a restart (the running config is kept)")
	}
	pending, err := g.certs.PrepareReload()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	next := *g
	next.cfg = cfg
	if err := next.buildChain(cfg, g); err != nil {
		next.closeNewChain(g)
		return err
	}
	if err := g.edge.Reload(cfg, next.edgeOptions()); err != nil {
		next.closeNewChain(g)
		return fmt.Errorf("edge: %w", err)
	}
	pending.Commit()
	g.metrics.WatchStoreBreaker(next.limiter.StoreDown)
	g.closeOldChain(&next)
	*g = next
	if g.admin != nil {
		g.admin.SetChecks(g.readyChecks())
	}
	return nil
}

// closeNewChain closes what a failed reload built and the running gateway
// old does not use.
func (g *gateway) closeNewChain(old *gateway) {
	if g.cache != nil && g.cache != old.cache {
		_ = g.cache.Close()
	}
	if old.cache != nil {
		c := old.cache
		old.metrics.CacheSource(func() admin.CacheTiers { return tiersOf(c) })
	}
	if g.limiter != nil && g.limiter != old.limiter {
		_ = g.limiter.Close()
	}
	if g.guard != nil && g.guard != old.guard {
		_ = g.guard.Close()
	}
	if g.fed != nil && g.fed != old.fed {
		_ = g.fed.Close()
	}
}

// closeOldChain closes what the previous config used and next does not.
func (g *gateway) closeOldChain(next *gateway) {
	if g.cache != nil && g.cache != next.cache {
		_ = g.cache.Close()
	}
	if g.limiter != next.limiter {
		_ = g.limiter.Close()
	}
	if g.guard != next.guard {
		_ = g.guard.Close()
	}
	if g.fed != next.fed {
		_ = g.fed.Close()
	}
}

// shutdown drains the edge, the egress and the admin listener within ctx,
// then closes the rest.
func (g *gateway) shutdown(ctx context.Context) error {
	var errs []error
	if g.edge != nil {
		if err := g.edge.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("edge: %w", err))
		}
	}
	if g.egress != nil {
		if err := g.egress.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("egress: %w", err))
		}
	}
	if g.admin != nil {
		if err := g.admin.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
	}
	g.closeParts()
	return errors.Join(errs...)
}

func (g *gateway) closeParts() {
	select {
	case <-g.stopCerts:
	default:
		close(g.stopCerts)
	}
	if g.guard != nil {
		_ = g.guard.Close()
	}
	if g.fed != nil {
		_ = g.fed.Close()
	}
	if g.limiter != nil {
		_ = g.limiter.Close()
	}
	if g.cache != nil {
		_ = g.cache.Close()
	}
	if g.certs != nil {
		_ = g.certs.Close()
	}
}

// ownAddrs are the gateway's own listeners: the egress never dials them.
func ownAddrs(cfg *configs.Config) []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range []string{cfg.Server.Listen, cfg.Server.RedirectListen, cfg.Egress.Listen, cfg.Admin.Listen} {
		host, port, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			a = netip.IPv6Unspecified() // every address of this host
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(p)))
	}
	return out
}

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

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/admin"
	"github.com/fedigate/fedigate/certs"
	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/egress"
	"github.com/fedigate/fedigate/proxy"
	"github.com/fedigate/fedigate/ratelimit"
	"github.com/fedigate/fedigate/signupgate"
)

// gateway is every part of one running fedigate, built from one config.
// Building binds nothing; start binds; reload builds the new parts fully,
// swaps them in, and only then closes the old ones.
type gateway struct {
	cfg       *configs.Config
	log       *slog.Logger
	metrics   *admin.Metrics
	certs     *certs.Source
	limiter   *ratelimit.Limiter
	gateRedis redis.UniversalClient // the gate's spent passes; nil with the memory store
	guard     *signupgate.Guard
	egress    *egress.Proxy // nil when egress.listen = ""
	edge      *proxy.Edge
	admin     *admin.Server // nil when admin.listen = ""

	egressDone chan error
	stopCerts  chan struct{}
}

// buildGateway constructs every part for cfg, binding nothing. On error,
// what was built is closed again.
func buildGateway(cfg *configs.Config, log *slog.Logger) (g *gateway, err error) {
	g = &gateway{cfg: cfg, log: log, metrics: admin.NewMetrics(), stopCerts: make(chan struct{})}
	defer func() {
		if err != nil {
			g.closeParts()
			g = nil
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
	if cfg.Admin.Listen != "" {
		if g.admin, err = admin.New(cfg.Admin, admin.Options{Logger: log, Metrics: g.metrics, Checks: g.readyChecks(),
			Certificates: servedCerts(g.certs)}); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	return g, nil
}

// buildChain makes the limiter and the sign-up gate, reusing prev's where
// that keeps state: the limiter's counts of unchanged rules, the gate's
// spent passes when [signup] did not change.
func (g *gateway) buildChain(cfg *configs.Config, prev *gateway) (err error) {
	m := g.metrics
	if prev != nil {
		g.limiter, err = prev.limiter.Reconfigure(cfg.RateLimit)
	} else {
		g.limiter, err = ratelimit.New(cfg.RateLimit, ratelimit.Options{
			Logger: g.log, ClientAddr: proxy.ClientAddr, Observe: func(d ratelimit.Decision) { observeLimit(m, d) },
		})
	}
	if err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	if prev != nil && reflect.DeepEqual(prev.cfg.Signup, cfg.Signup) && reflect.DeepEqual(prev.cfg.Routes, cfg.Routes) &&
		prev.cfg.RateLimit.RedisURL == cfg.RateLimit.RedisURL && prev.cfg.RateLimit.Store == cfg.RateLimit.Store {
		g.guard, g.gateRedis = prev.guard, prev.gateRedis
		return nil
	}
	if cfg.RateLimit.Store == configs.StoreRedis {
		if g.gateRedis, err = ratelimit.OpenRedis(cfg.RateLimit.RedisURL); err != nil {
			return fmt.Errorf("ratelimit.redis_url: %w", err)
		}
	}
	gateOpts := signupgate.Options{
		Logger: g.log, ClientAddr: proxy.ClientAddr, StateDir: cfg.TLS.StateDir, Redis: g.gateRedis,
		Observe: func(e signupgate.Event) {
			if e.Kind == "surge" {
				m.Surge(e.Surge)
				return
			}
			m.Gate(e.Kind, e.Reason)
		},
	}
	if g.egress != nil {
		// captcha verification leaves through the SOCKS upstream too
		gateOpts.HTTPClient = g.egress.HTTPClient(cfg.Signup.VerifyTimeout)
	}
	if g.guard, err = signupgate.New(cfg.Signup, cfg.Routes, gateOpts); err != nil {
		return fmt.Errorf("signup: %w", err)
	}
	return nil
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
	m.StoreBreaker(d.Err != nil) // the memory store never fails: stays 0
}

func (g *gateway) edgeOptions() proxy.Options {
	return proxy.Options{
		Logger:       g.log,
		TLSConfig:    g.certs.TLSConfig(),
		Guards:       []func(http.Handler) http.Handler{g.limiter.Middleware, g.guard.Middleware},
		GuardNames:   []string{"ratelimit", "signupgate"},
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
	go g.watchCertExpiry(g.stopCerts)
	return nil
}

// reload applies cfg to the running gateway: the new parts are built fully
// first; on any error the running gateway is left exactly as it was.
func (g *gateway) reload(cfg *configs.Config) error {
	if !reflect.DeepEqual(cfg.Egress, g.cfg.Egress) || !reflect.DeepEqual(cfg.TLS, g.cfg.TLS) ||
		!reflect.DeepEqual(cfg.Admin, g.cfg.Admin) || !reflect.DeepEqual(cfg.Server.Hosts, g.cfg.Server.Hosts) {
		return errors.New("changes to [tls], [egress], [admin] or server.hosts need a restart (the running config is kept)")
	}
	next := *g
	next.cfg = cfg
	if err := g.certs.Reload(); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := next.buildChain(cfg, g); err != nil {
		next.closeNewChain(g)
		return err
	}
	if err := g.edge.Reload(cfg, next.edgeOptions()); err != nil {
		next.closeNewChain(g)
		return fmt.Errorf("edge: %w", err)
	}
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
	if g.limiter != nil && g.limiter != old.limiter {
		_ = g.limiter.Close()
	}
	if g.guard != nil && g.guard != old.guard {
		_ = g.guard.Close()
	}
	if g.gateRedis != nil && g.gateRedis != old.gateRedis {
		_ = g.gateRedis.Close()
	}
}

// closeOldChain closes what the previous config used and next does not.
func (g *gateway) closeOldChain(next *gateway) {
	if g.limiter != next.limiter {
		_ = g.limiter.Close()
	}
	if g.guard != next.guard {
		_ = g.guard.Close()
	}
	if g.gateRedis != nil && g.gateRedis != next.gateRedis {
		_ = g.gateRedis.Close()
	}
}

// shutdown drains the edge, the egress and the admin listener within ctx,
// then closes the rest.
func (g *gateway) shutdown(ctx context.Context) error {
	var errs []error
	if err := g.edge.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("edge: %w", err))
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
	if g.limiter != nil {
		_ = g.limiter.Close()
	}
	if g.gateRedis != nil {
		_ = g.gateRedis.Close()
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

package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/httplog"
)

// Check is one dependency /readyz probes.
type Check struct {
	Name  string                          // e.g. "backend_web", "redis", "socks_upstream"
	Probe func(ctx context.Context) error // nil error = reachable
}

// Options are the Server's hooks.
type Options struct {
	Logger  *slog.Logger // nil = slog.Default()
	Metrics *Metrics     // nil = /metrics answers 404
	Checks  []Check      // what /readyz probes; nil = ready whenever the process is up
	// CheckTimeout bounds each probe; zero = 2s.
	CheckTimeout time.Duration
	// Certificates lists the served certificates for the status page;
	// nil = the page shows none.
	Certificates func() []Cert
	// SampleEvery is how often the status page samples the metrics and
	// probes the checks; the last hour of samples is kept. Zero = 5s.
	SampleEvery time.Duration
}

// Server is the admin listener.
type Server struct {
	cfg    configs.Admin
	opts   Options
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	mu     sync.RWMutex
	checks []Check
	status *status
}

// SetChecks replaces what /readyz probes (after a reload).
func (s *Server) SetChecks(checks []Check) {
	s.mu.Lock()
	s.checks = checks
	s.mu.Unlock()
}

// New builds the admin server; it binds nothing.
func New(cfg configs.Admin, opts Options) (*Server, error) {
	if cfg.Listen == "" {
		return nil, errors.New("admin.listen is empty")
	}
	if opts.CheckTimeout == 0 {
		opts.CheckTimeout = 2 * time.Second
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, checks: opts.Checks}
	if s.log == nil {
		s.log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.routesStatus(mux)
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	s.srv = &http.Server{
		Handler:           s.localOnly(mux),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          httplog.ErrorLog(s.log, "admin"),
	}
	return s, nil
}

// localOnly refuses peers beyond loopback unless allow_remote is set, even
// if the listen address was widened by mistake.
func (s *Server) localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "fedigate-admin")
		if !s.cfg.AllowRemote {
			ap, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				http.Error(w, "admin endpoints answer loopback only (admin.allow_remote)", http.StatusForbidden)
				return
			}
			if !loopbackHost(r.Host) {
				// DNS rebinding: a web page whose name now resolves to
				// 127.0.0.1 would read the status page from the admin's browser.
				http.Error(w, "admin endpoints answer Host 127.0.0.1, [::1] or localhost only", http.StatusMisdirectedRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost: the Host header names this machine by an address (loopback
// or unspecified) or "localhost", as a browser or scraper on the machine
// (or through an SSH tunnel) sends it; DNS rebinding always sends a name.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || strings.EqualFold(host, "localhost") { // "": the listen address had no host (":9180")
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && (a.Unmap().IsLoopback() || a.IsUnspecified()) // a name is what rebinding sends
}

type checkResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// readyz probes every check at once; 200 when all answer, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	checks := s.checks
	s.mu.RUnlock()
	results := s.probeAll(r.Context(), checks)
	ready := true
	for _, res := range results {
		ready = ready && res.OK
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(struct {
		Ready  bool                   `json:"ready"`
		Checks map[string]checkResult `json:"checks"`
	}{ready, results})
}

// probeAll runs every check at once, each within CheckTimeout.
func (s *Server) probeAll(parent context.Context, checks []Check) map[string]checkResult {
	results := make(map[string]checkResult, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(parent, s.opts.CheckTimeout)
			defer cancel()
			res := checkResult{OK: true}
			if err := c.Probe(ctx); err != nil {
				res = checkResult{Error: err.Error()}
			}
			mu.Lock()
			results[c.Name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

// Start binds admin.listen and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.ln, s.done = ln, make(chan struct{})
	s.startSampling()
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the bound address (after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the listener and waits for requests in flight within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	s.stopSampling()
	return err
}

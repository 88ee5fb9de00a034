package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/accesslog"
	"github.com/fedigate/fedigate/internal/httplog"
)

// chain is everything one configuration decides: the handler of the edge
// and its backends. It is built fully before it replaces another, and is
// immutable once built.
type chain struct {
	cfg       *configs.Config
	log       *slog.Logger
	errorLog  *stdlog.Logger    // net/http's and ReverseProxy's own errors (httplog.ErrorLog)
	access    *accesslog.Writer // nil: the access log goes through log
	observe   func(route string, status int, d time.Duration)
	tls       *tls.Config
	hosts     map[string]struct{} // lower-case names; nil = any
	hsts      []string            // the HSTS value, or nil; one slice for every answer (len = cap, so an append copies it)
	maxBody   int64
	maxHeader int64         // server.max_header_bytes: over it 431, answered by the edge
	bodyIdle  time.Duration // Options.BodyIdleTimeout
	send      time.Duration // Options.SendTimeout
	trust     trust
	routes    router
	backends  *backends
	web       http.Handler // backends.serveWeb, wrapped by Options.WebCache
	static    *staticFiles // nil = no static_root
	errorPage []byte       // static_root/500.html, nil = short text
	gzip      *gzipper
	inner     http.Handler // guards, then the router
	redirect  http.Handler // the redirect_listen handler, wrapped
	edge      *edgeState
}

// edgeState is what outlives one chain: counters and stream cancellation
// shared by every chain an Edge runs.
type edgeState struct {
	active       atomic.Int64 // requests in flight, streams excepted
	streamCtx    context.Context
	streamCancel context.CancelFunc
	conns        connTracker
	streams      streams                // open streams per client (streams.go)
	listenPort   atomic.Int32           // the bound HTTPS port, for redirects
	altSvc       atomic.Pointer[string] // Alt-Svc for HTTP/3; nil or "" = none
}

func buildChain(cfg *configs.Config, opts Options, st *edgeState) (*chain, error) {
	if cfg == nil {
		return nil, errors.New("proxy: nil config")
	}
	if opts.TLSConfig == nil {
		return nil, errors.New("proxy: Options.TLSConfig is required")
	}
	if len(opts.TLSConfig.Certificates) == 0 && opts.TLSConfig.GetCertificate == nil && opts.TLSConfig.GetConfigForClient == nil {
		return nil, errors.New("proxy: Options.TLSConfig has no certificate (set Certificates or GetCertificate)")
	}
	if _, _, err := net.SplitHostPort(cfg.Server.Listen); err != nil {
		return nil, fmt.Errorf("proxy: server.listen %q: %w", cfg.Server.Listen, err)
	}
	if cfg.Server.RedirectListen != "" {
		if _, _, err := net.SplitHostPort(cfg.Server.RedirectListen); err != nil {
			return nil, fmt.Errorf("proxy: server.redirect_listen %q: %w", cfg.Server.RedirectListen, err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	setPollLogger(log)
	c := &chain{
		cfg:       cfg,
		log:       log,
		errorLog:  httplog.ErrorLog(log, "edge"),
		access:    opts.AccessLog,
		observe:   opts.Observe,
		hsts:      oneValue(cfg.Server.HSTS),
		maxBody:   cfg.Server.MaxRequestBody,
		maxHeader: cfg.Server.MaxHeaderBytes,
		bodyIdle:  cmp.Or(opts.BodyIdleTimeout, defaultBodyIdleTimeout),
		send:      cmp.Or(opts.SendTimeout, defaultSendTimeout),
		trust:     newTrust(cfg.Server.TrustedProxies, cfg.Server.ClientIPHeaders),
		routes:    newRouter(cfg.Routes),
		gzip:      newGzipper(cfg.Routes.GzipTypes),
		edge:      st,
	}
	c.tls = opts.TLSConfig.Clone()
	if c.tls.MinVersion < tls.VersionTLS12 {
		c.tls.MinVersion = tls.VersionTLS12
	}
	c.tls.NextProtos = []string{"h2", "http/1.1"}
	if len(cfg.Server.Hosts) > 0 {
		c.hosts = make(map[string]struct{}, len(cfg.Server.Hosts))
		for _, h := range cfg.Server.Hosts {
			c.hosts[strings.TrimSuffix(strings.ToLower(h), ".")] = struct{}{}
		}
	}
	if root := cfg.Backend.StaticRoot; root != "" {
		s, err := openStatic(root)
		if err != nil {
			return nil, err
		}
		c.static = s
		page, err := os.ReadFile(filepath.Join(root, "500.html"))
		switch {
		case err == nil:
			c.errorPage = page
		case !errors.Is(err, os.ErrNotExist):
			s.close()
			return nil, fmt.Errorf("proxy: reading %s: %w", filepath.Join(root, "500.html"), err)
		}
	}
	b, err := newBackends(cfg.Backend, c, opts.noLean)
	if err != nil {
		c.closeStatic()
		return nil, err
	}
	c.backends = b
	if c.web = http.HandlerFunc(b.serveWeb); opts.WebCache != nil {
		c.web = opts.WebCache(c.web)
	}
	var h http.Handler = http.HandlerFunc(c.route)
	for i := len(opts.Guards) - 1; i >= 0; i-- {
		if opts.Guards[i] == nil {
			continue
		}
		name := "guard" + strconv.Itoa(i+1)
		if i < len(opts.GuardNames) && opts.GuardNames[i] != "" {
			name = opts.GuardNames[i]
		}
		h = namedGuard(name, opts.Guards[i](h))
	}
	c.inner = h
	var rh http.Handler = http.HandlerFunc(c.serveRedirect)
	if opts.WrapRedirect != nil {
		rh = opts.WrapRedirect(rh)
	}
	c.redirect = rh
	return c, nil
}

// namedGuard marks the request as the guard's until the guard passes it on:
// the next guard, or the router, overwrites the route; a request the guard
// answers itself keeps its name in the access log and the metrics.
func namedGuard(name string, g http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateOf(r); st != nil {
			st.route = name
		}
		g.ServeHTTP(w, r)
	})
}

func (c *chain) closeStatic() {
	if c.static != nil {
		c.static.close()
	}
}

// release frees what an old chain holds once nothing can use it.
func (c *chain) release() {
	c.backends.closeIdle()
	c.closeStatic()
}

// ServeHTTP is the edge: host filter, security headers, body limit, the
// client decision and header cleaning, then guards and routing; one access
// log line at the end.
func (c *chain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := &reqState{ResponseWriter: w, route: "edge", counted: true}
	st.startSend(w, c.send, start)
	c.edge.active.Add(1)
	defer c.finish(st, r, start)

	// the client first: every refusal below is answered, logged and
	// counted with it
	peer := peerAddr(r)
	trusted := peer.IsValid() && c.trust.trusted(peer)
	st.client = peer
	if trusted {
		st.client = c.trust.decide(peer, r.Header)
	}
	st.ctx = stateCtx{Context: r.Context(), st: st}
	r = r.WithContext(&st.ctx)
	st.facts.Reset(r)
	h := st.Header()
	if c.hsts != nil {
		h["Strict-Transport-Security"] = c.hsts
	}
	if !c.hostAllowed(r.Host) {
		c.edgeError(st, r, http.StatusMisdirectedRequest, "misdirected request: unknown host")
		return
	}
	if r.ProtoMajor < 3 {
		if alt := c.edge.altSvc.Load(); alt != nil && *alt != "" {
			h["Alt-Svc"] = []string{*alt}
		}
	} else if earlyDataUnsafe(r) {
		c.edgeError(st, r, http.StatusTooEarly, "too early: retry after the handshake")
		return
	}
	if r.Method == http.MethodConnect {
		c.edgeError(st, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if !originTarget(r.URL) {
		c.edgeError(st, r, http.StatusBadRequest, "bad request: request target")
		return
	}
	if hasDotDotSegment(r.URL.Path) {
		c.edgeError(st, r, http.StatusBadRequest, "bad request: path")
		return
	}
	if c.maxHeader > 0 && requestHeaderSize(r) > c.maxHeader {
		if r.ProtoMajor == 1 {
			h.Set("Connection", "close")
		}
		c.edgeError(st, r, http.StatusRequestHeaderFieldsTooLarge, "request header fields too large")
		return
	}
	if c.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > c.maxBody {
			h.Set("Connection", "close")
			c.edgeError(st, r, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		st.body = &bodyGuard{rc: r.Body, left: c.maxBody, ctl: http.NewResponseController(w), idle: c.bodyIdle}
		// from now: the server reads a body nobody read before it answers
		_ = st.body.ctl.SetReadDeadline(time.Now().Add(c.bodyIdle))
		r.Body = st.body
	}
	cleanRequestHeaders(r.Header, trusted)
	st.stream = c.routes.isStreaming(r.URL.Path)
	c.inner.ServeHTTP(st, r)
}

func (c *chain) finish(st *reqState, r *http.Request, start time.Time) {
	if st.counted {
		c.edge.active.Add(-1)
	}
	status := st.status
	if status == 0 {
		status = http.StatusOK
		if r.Context().Err() != nil {
			status = 499 // the client went away before an answer
		}
	}
	now := time.Now()
	d := now.Sub(start)
	st.armSend(now) // the server sends what is still buffered after this
	if c.observe != nil {
		c.observe(st.route, status, d)
	}
	if c.access != nil {
		line := accesslog.Line{Time: now, Client: st.client, Method: r.Method, Path: r.URL.Path,
			Status: status, Bytes: st.bytes, Duration: d, Route: st.route}
		var extra [1]accesslog.Field
		if st.cache != "" {
			extra[0] = accesslog.String("cache", st.cache)
			line.Extra = extra[:]
		}
		c.access.Log(&line)
	} else if c.log.Enabled(r.Context(), slog.LevelInfo) {
		attrs := [...]slog.Attr{
			slog.String("client", st.client.String()),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", st.bytes),
			slog.Duration("duration", d),
			slog.String("route", st.route),
			slog.String("cache", st.cache),
		}
		n := len(attrs) - 1
		if st.cache != "" {
			n++
		}
		c.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:n]...)
	}
}

// hostAllowed reports whether host (a Host header, maybe with a port) is
// one of server.hosts; any host when the list is empty.
func (c *chain) hostAllowed(host string) bool {
	if c.hosts == nil {
		return true
	}
	name := hostOnly(host)
	if _, ok := c.hosts[name]; ok {
		return true
	}
	_, ok := c.hosts[strings.ToLower(name)]
	return ok
}

// hostOnly strips the port and a trailing dot from a Host value.
func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		if strings.IndexByte(host, ':') == i || strings.HasPrefix(host, "[") {
			host = host[:i]
		}
	}
	host = strings.TrimSuffix(host, ".")
	return host
}

// originTarget reports whether u, a parsed request target, names a path
// on this server: a path, or an absolute http(s) URI. An opaque target
// ("http:x") would reach the backend as the bare "x" while the edge's
// rules saw no path at all; nginx refuses both, as does the edge.
func originTarget(u *url.URL) bool {
	if u.Opaque != "" {
		return false
	}
	switch u.Scheme {
	case "", "http", "https":
		return true
	}
	return false
}

// hasDotDotSegment reports whether the decoded path has a ".." segment.
func hasDotDotSegment(p string) bool {
	if !strings.Contains(p, "..") {
		return false
	}
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return true
		}
	}
	return false
}

// requestHeaderSize is the size of r's header as server.max_header_bytes
// counts it: the request line's target, Host, and each field.
func requestHeaderSize(r *http.Request) int64 {
	n := len(r.Method) + len(r.RequestURI) + len(r.Host) + 16
	for k, vv := range r.Header {
		for _, v := range vv {
			n += len(k) + len(v) + 4
		}
	}
	return int64(n)
}

// Package signupgate owns fedigate's sign-up gate: a challenge a person
// passes before the backend sees a sign-up request. The built-in proof of
// work (pow.go, assets/) or an hCaptcha/Turnstile widget (captcha.go) earns
// a pass: a signed token bound to the client (IPv6 /64), expiring after
// pass_ttl, carried in a cookie, and spent by the sign-up it admits (one
// atomic take in memory or Redis, given back when the backend refuses the
// form). Anything but an explicit valid pass refuses. Surge lock-down
// (surge.go) raises the difficulty and refuses API sign-up while sign-up
// attempts spike. The gate's own endpoints live under /.fedigate/.
// Routing, the client address and rate limits live in proxy and ratelimit.
package signupgate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/backendroute"
)

// Prefix is where the gate's own pages and endpoints live.
const Prefix = "/.fedigate/"

// PassCookie is the pass's cookie: __Host- keeps it to this exact origin.
const PassCookie = "__Host-fedigate-pass"

// Options are a Guard's hooks; every zero value is documented.
type Options struct {
	Logger     *slog.Logger                   // nil = slog.Default()
	Now        func() time.Time               // nil = time.Now
	ClientAddr func(*http.Request) netip.Addr // nil = host of r.RemoteAddr (cmd passes proxy.ClientAddr)
	StateDir   string                         // where signup.key is created (0600) when cfg.SecretFile is ""
	Redis      redis.UniversalClient          // spent passes shared by gateways; nil = in memory
	// HTTPClient makes the captcha siteverify calls; nil = a plain client
	// with cfg.VerifyTimeout (cmd passes the egress's, so they leave
	// through the SOCKS upstream).
	HTTPClient *http.Client
	Observe    func(Event) // nil = none
}

// Event is one gate decision, for metrics: Kind is "challenge", "solved",
// "admitted", "refused" or "surge"; Reason says why, for refusals.
type Event struct {
	Kind   string
	Reason string
	Surge  bool // for Kind "surge": on or off
}

// Guard is the sign-up gate middleware.
type Guard struct {
	cfg        configs.Signup
	routes     configs.Routes
	gated      gatedRoutes
	log        *slog.Logger
	now        func() time.Time
	clientAddr func(*http.Request) netip.Addr
	key        []byte
	spent      spentStore
	verifier   *verifier
	surge      *surge
	observe    func(Event)
}

// New validates cfg and builds the gate; it loads or creates the pass key.
func New(cfg configs.Signup, routes configs.Routes, opts Options) (*Guard, error) {
	g := &Guard{cfg: cfg, routes: routes, gated: gatedRoutesOf(routes), log: opts.Logger, now: opts.Now, clientAddr: opts.ClientAddr, observe: opts.Observe}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.clientAddr == nil {
		g.clientAddr = remoteAddr
	}
	switch cfg.Gate {
	case configs.GateOff:
		return g, nil
	case configs.GatePoW, configs.GateHCaptcha, configs.GateTurnstile:
	default:
		return nil, fmt.Errorf("signup.gate %q: want off, pow, hcaptcha or turnstile", cfg.Gate)
	}
	if cfg.PowDifficulty < 1 || cfg.PowDifficulty+cfg.SurgeExtraBits > 32 || cfg.PassTTL <= 0 {
		return nil, errors.New("signup: pow_difficulty (plus surge_extra_bits) must be 1 to 32 and pass_ttl positive")
	}
	var err error
	if g.key, err = loadKey(cfg.SecretFile, opts.StateDir); err != nil {
		return nil, err
	}
	if opts.Redis != nil {
		g.spent = &redisSpent{c: opts.Redis, now: g.now}
	} else {
		g.spent = newMemorySpent(g.now)
	}
	if cfg.Gate != configs.GatePoW {
		if g.verifier, err = newVerifier(cfg, opts.HTTPClient); err != nil {
			return nil, err
		}
	}
	g.surge = &surge{threshold: cfg.SurgeThreshold, window: cfg.SurgeWindow, hold: cfg.SurgeHold, log: g.log,
		onChange: func(on bool) { g.emit(Event{Kind: "surge", Surge: on}) }}
	if cfg.SurgeThreshold > 0 && cfg.SurgeWindow < 60*time.Nanosecond {
		return nil, errors.New("signup.surge_window too short")
	}
	return g, nil
}

// Close releases nothing the Guard does not own; it exists for symmetry
// with the other parts and is safe to call twice.
func (g *Guard) Close() error { return nil }

// loadKey reads the HMAC key from secretFile, or from stateDir/signup.key,
// creating that with 32 random bytes (0600) when missing.
func loadKey(secretFile, stateDir string) ([]byte, error) {
	path := secretFile
	if path == "" {
		if stateDir == "" {
			return nil, errors.New("signup: no state_dir for signup.key and no signup.secret_file")
		}
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return nil, err
		}
		path = filepath.Join(stateDir, "signup.key")
		if err := createKey(path); err != nil {
			return nil, err
		}
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signup key: %w", err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("signup key %s holds %d bytes: want at least 32 (head -c 32 /dev/urandom > %s)", path, len(key), path)
	}
	return key, nil
}

// createKey writes 32 random bytes to path (0600) unless it exists; O_EXCL
// keeps two gateways starting at once from overwriting each other's key.
func createKey(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signup key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("signup key: %w", err)
	}
	return f.Close()
}

// difficulty is the current proof-of-work difficulty (raised in a surge).
func (g *Guard) difficulty(now time.Time) uint8 {
	d := g.cfg.PowDifficulty
	if g.surge.active(now) {
		d += g.cfg.SurgeExtraBits
	}
	return uint8(d)
}

// Middleware gates the preset's sign-up routes and serves /.fedigate/.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	if g.cfg.Gate == configs.GateOff {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if len(p) >= len(Prefix) && p[:len(Prefix)] == Prefix {
			g.serveGate(w, r)
			return
		}
		f := backendroute.Of(r)
		route := backendroute.WithoutFormat(f.Path)
		switch {
		case (r.Method == http.MethodGet || r.Method == http.MethodHead) && slices.Contains(g.gated.pages, route):
			g.gatePage(w, r, next)
		case r.Method == http.MethodPost && slices.Contains(g.gated.posts, route) && f.MethodOverride(r).Method == "":
			g.gateSignup(w, r, next, false)
		case r.Method == http.MethodPost && g.gated.api != "" && route == g.gated.api:
			g.gateAPI(w, r, next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// gatedRoutes are the sign-up routes as Middleware compares them: in the
// form routeOf gives.
type gatedRoutes struct {
	pages, posts []string
	api          string // "" when the backend has no API sign-up
}

func gatedRoutesOf(r configs.Routes) gatedRoutes {
	var g gatedRoutes
	for _, p := range r.SignupPages {
		g.pages = append(g.pages, routeOf(p))
	}
	for _, p := range r.SignupPosts {
		g.posts = append(g.posts, routeOf(p))
	}
	if r.APISignup != "" {
		g.api = routeOf(r.APISignup)
	}
	return g
}

// routeOf is the route a backend takes path p to, so that every spelling
// of a sign-up route is gated: "/auth/", "//auth", "/AUTH" and
// "/auth.json" are all Mastodon's "/auth".
func routeOf(p string) string { return backendroute.WithoutFormat(backendroute.Canonical(p)) }

// gatePage: the sign-up form is shown to holders of a valid pass; others
// are sent to the challenge, which brings them back here.
func (g *Guard) gatePage(w http.ResponseWriter, r *http.Request, next http.Handler) {
	_, err := g.validPass(r)
	if err == nil {
		next.ServeHTTP(w, r)
		return
	}
	g.log.Info("sign-up gate", "client", g.clientAddr(r).String(), "path", r.URL.Path, "outcome", "challenged", "reason", err.Error())
	http.Redirect(w, r, Prefix+"challenge?return="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

func (g *Guard) gateAPI(w http.ResponseWriter, r *http.Request, next http.Handler) {
	now := g.now()
	policy := g.cfg.API
	if g.surge.active(now) && policy != configs.APIDeny {
		// In a surge the API is closed where a web form exists (Mastodon);
		// where the API is the web sign-up (Pleroma, Akkoma: no
		// SignupPosts), it needs a pass of the raised difficulty instead.
		policy = configs.APIDeny
		if len(g.routes.SignupPosts) == 0 {
			policy = configs.APIChallenge
		}
	}
	switch policy {
	case configs.APIAllow:
		g.surge.attempt(now)
		next.ServeHTTP(w, r)
	case configs.APIDeny:
		g.surge.attempt(now)
		g.decide(r, "refused", "api_denied")
		writeJSON(w, http.StatusForbidden, `{"error":"Sign-up through the API is closed on this server: please sign up on the website."}`)
	default:
		g.gateSignup(w, r, next, true)
	}
}

// gateSignup admits a sign-up POST with a valid pass, spending it in one
// atomic step before the backend sees the request; a refused form (4xx or
// 5xx) gives it back, so only an accepted sign-up uses it up.
func (g *Guard) gateSignup(w http.ResponseWriter, r *http.Request, next http.Handler, api bool) {
	g.surge.attempt(g.now())
	pass, err := g.validPass(r)
	if err == nil {
		var took bool
		took, err = g.spent.take(r.Context(), pass.id, pass.expires)
		if err == nil && !took {
			err = errReplayed
		}
	}
	if err != nil {
		reason := err.Error()
		if !errors.Is(err, errReplayed) && !isReason(err) {
			g.log.Error("sign-up gate: spent-pass store failed; refusing (fail closed)", "err", err)
			reason = "store_error"
		}
		g.decide(r, "refused", reason)
		g.refuse(w, r, api)
		return
	}
	stripPassCookie(r)
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if rec.status >= 400 {
		if err := g.spent.give(context.WithoutCancel(r.Context()), pass.id); err != nil {
			g.log.Error("sign-up gate: could not give a pass back after a refused form", "err", err)
		}
		g.decide(r, "admitted", "form_refused_pass_kept")
		return
	}
	g.decide(r, "admitted", "spent")
}

var errReplayed = errors.New("replayed")

func isReason(err error) bool {
	for _, e := range []error{errMalformed, errForged, errExpired, errMoved, errKind, errNoPass} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var errNoPass = errors.New("no_pass")

// validPass returns the request's pass when it is valid for this client.
func (g *Guard) validPass(r *http.Request) (token, error) {
	c, err := r.Cookie(PassCookie)
	if err != nil {
		return token{}, errNoPass
	}
	return parseToken(c.Value, g.key, kindPass, g.clientAddr(r), g.now())
}

// decide writes the one log line of a decision and reports it.
func (g *Guard) decide(r *http.Request, outcome, reason string) {
	g.log.Info("sign-up gate", "client", g.clientAddr(r).String(), "path", r.URL.Path, "outcome", outcome, "reason", reason)
	g.emit(Event{Kind: outcome, Reason: reason})
}

func (g *Guard) emit(e Event) {
	if g.observe != nil {
		g.observe(e)
	}
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// statusRecorder notes the backend's status for spending the pass.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

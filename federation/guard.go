// Package federation owns fedigate's inbound federation guard: the
// decision, at the edge and before the backend verifies or queues
// anything, on each POST to an inbox path ([federation]). It reads the
// claimed sender (the host of the signature's key id, draft-cavage or
// RFC 9421), refuses denied domains (deny_domains and Mastodon's
// domain-block export, re-read on change), limits deliveries per sending
// domain per client address in the rate limiter's store, checks the
// body's size, digests and the signature's clock, and runs the content
// filters ([[federation.filter]]) over the activity. It never verifies a
// signature or fetches a key: the backend does that for what passes.
//
// The config is parsed and validated by configs; the counting is
// package ratelimit's (Limiter.Keyed); the client address comes from a
// hook (cmd passes proxy.ClientAddr); metrics are admin's, through
// Options.Observe.
package federation

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/backendroute"
	"github.com/fedigate/fedigate/ratelimit"
)

// LimitName names the guard's counts in the rate limiter's store.
const LimitName = "federation"

// Options are a Guard's hooks; every zero value is documented.
type Options struct {
	Logger     *slog.Logger                   // nil = slog.Default()
	Now        func() time.Time               // the clock of the signature window; nil = time.Now
	ClientAddr func(*http.Request) netip.Addr // nil = host of r.RemoteAddr (cmd passes proxy.ClientAddr)
	// Limiter is the store limit counts in (memory, or Redis shared by
	// gateways); nil = a memory Limiter of the Guard's own, closed with it.
	Limiter *ratelimit.Limiter
	Observe func(Event) // once per delivery; nil = none
	// WatchInterval is how often the blocklist file is checked for a
	// change; 0 = 2s.
	WatchInterval time.Duration
}

// Event is one decision on one delivery, for metrics.
type Event struct {
	Verdict Verdict
	Domain  string // the claimed sending domain; "" when unsigned
	Rule    string // what refused it: "deny_domains", "blocklist", a filter's name; "" otherwise
}

// Guard is the inbox middleware of one [federation] section. It is safe
// for concurrent use.
type Guard struct {
	cfg        configs.Federation
	log        *slog.Logger
	now        func() time.Time
	clientAddr func(*http.Request) netip.Addr
	observe    func(Event)
	inbox      inboxPaths
	deny       *domainSet
	blocks     *blockState // nil without a blocklist
	filters    *filters    // nil without filters
	keyed      *ratelimit.Keyed
	ownLimiter *ratelimit.Limiter
	pool       sync.Pool // *delivery

	stop     chan struct{}
	watching sync.WaitGroup
	closed   sync.Once
}

// New validates cfg and builds a Guard; it reads the blocklist (a broken
// file is an error, each fault "file:line: ...") and starts watching it.
func New(cfg configs.Federation, opts Options) (*Guard, error) {
	return build(cfg, opts, nil)
}

// Reconfigure builds a Guard for cfg. The blocklist is read again; when
// its path is unchanged and the file is now broken, the last good list is
// kept and the fault logged. Swap the new Guard in, then Close this one.
// On error nothing changes.
func (g *Guard) Reconfigure(cfg configs.Federation, opts Options) (*Guard, error) {
	return build(cfg, opts, g)
}

func build(cfg configs.Federation, opts Options, prev *Guard) (g *Guard, err error) {
	g = &Guard{cfg: cfg, log: opts.Logger, now: opts.Now, clientAddr: opts.ClientAddr, observe: opts.Observe,
		deny: newDomainSet(), stop: make(chan struct{})}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.clientAddr == nil {
		g.clientAddr = remoteAddr
	}
	var errs []error
	if g.inbox, err = compileInboxPaths(cfg.InboxPaths); err != nil {
		errs = append(errs, err)
	}
	for _, d := range cfg.DenyDomains {
		if !g.deny.addPattern(d) {
			errs = append(errs, fmt.Errorf("deny_domains: %q is not a domain or *.domain", d))
		}
	}
	if cfg.MaxBody <= 0 || cfg.MaxClockSkew <= 0 {
		errs = append(errs, errors.New("max_body and max_clock_skew must be more than 0"))
	}
	if cfg.Limit < 0 || cfg.Limit > configs.MaxRuleLimit || (cfg.Limit > 0 && cfg.Period < configs.MinRulePeriod) {
		errs = append(errs, fmt.Errorf("limit %d per %v: want 0 (off) to %d, per at least %v", cfg.Limit, cfg.Period, configs.MaxRuleLimit, configs.MinRulePeriod))
	}
	if len(cfg.Filters) > 0 {
		if g.filters, err = compileFilters(cfg.Filters); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	if cfg.Blocklist != "" {
		var old *blockState
		if prev != nil && prev.blocks != nil && prev.blocks.path == cfg.Blocklist {
			old = prev.blocks
		}
		if g.blocks, err = loadBlocks(cfg.Blocklist, old, g.log); err != nil {
			return nil, fmt.Errorf("federation: %w", err)
		}
	}
	if cfg.Limit > 0 {
		lim := opts.Limiter
		if lim == nil {
			rl := configs.RateLimit{Store: configs.StoreMemory, OnStoreError: configs.OnErrAllow, StoreTimeout: 100 * time.Millisecond, IPv6Prefix: 64}
			if lim, err = ratelimit.New(rl, ratelimit.Options{Logger: g.log}); err != nil {
				return nil, fmt.Errorf("federation: %w", err)
			}
			g.ownLimiter = lim
		}
		if g.keyed, err = lim.Keyed(LimitName, cfg.Limit, cfg.Period); err != nil {
			if g.ownLimiter != nil {
				_ = g.ownLimiter.Close()
			}
			return nil, fmt.Errorf("federation: %w", err)
		}
	}
	g.pool.New = func() any { return &delivery{buf: make([]byte, 0, 8<<10)} }
	if g.blocks != nil {
		every := opts.WatchInterval
		if every <= 0 {
			every = 2 * time.Second
		}
		g.watching.Add(1)
		go g.watch(every)
	}
	return g, nil
}

// Close stops watching the blocklist and releases the Guard's own
// Limiter. Safe to call twice.
func (g *Guard) Close() error {
	var err error
	g.closed.Do(func() {
		close(g.stop)
		g.watching.Wait()
		if g.ownLimiter != nil {
			err = g.ownLimiter.Close()
		}
	})
	return err
}

// watch re-reads the blocklist when the file changes.
func (g *Guard) watch(every time.Duration) {
	defer g.watching.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.blocks.reloadIfChanged(g.log)
		}
	}
}

// ReloadBlocklist reads the blocklist file now; a broken file keeps the
// last good list, and the error says why. Without a blocklist it does
// nothing.
func (g *Guard) ReloadBlocklist() error {
	if g.blocks == nil {
		return nil
	}
	return g.blocks.reload(g.log)
}

// Middleware decides each POST to an inbox path; any other request goes
// to next untouched.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !g.inbox.match(canonicalPath(r)) {
			next.ServeHTTP(w, r)
			return
		}
		g.serveDelivery(w, r, next)
	})
}

// canonicalPath is the path as the backend routes it: the one place this
// package reads it.
func canonicalPath(r *http.Request) string {
	return backendroute.WithoutFormat(backendroute.Canonical(r.URL.Path))
}

// serveDelivery decides one delivery: the claimed sender first, from the
// headers alone; the body only for a sender that passed.
func (g *Guard) serveDelivery(w http.ResponseWriter, r *http.Request, next http.Handler) {
	c := readClaim(r.Header)
	switch {
	case c.status == sigAmbiguous:
		g.refuse(w, r, Event{Verdict: Ambiguous}, "")
		return
	case c.status == sigMalformed && g.cfg.RequireSignature:
		g.refuse(w, r, Event{Verdict: Malformed}, "")
		return
	case c.status == sigNone && g.cfg.RequireSignature:
		g.refuse(w, r, Event{Verdict: Unsigned}, "")
		return
	}
	domain := ""
	if c.status == sigOK {
		domain = c.domain
		if g.deny.has(domain) {
			g.refuse(w, r, Event{Verdict: Denied, Domain: domain, Rule: "deny_domains"}, "")
			return
		}
		if g.blocks != nil && g.blocks.current().set.has(domain) {
			g.refuse(w, r, Event{Verdict: Denied, Domain: domain, Rule: "blocklist"}, "")
			return
		}
		if !g.inWindow(&c, r.Header) {
			g.refuse(w, r, Event{Verdict: ClockSkew, Domain: domain}, "")
			return
		}
	}
	if g.keyed != nil {
		key := domain
		if key == "" {
			key = "-" // unsigned deliveries count together, per client
		}
		res, err := g.keyed.Allow(r.Context(), g.clientAddr(r), key)
		if !res.Allowed {
			v := Limited
			if err != nil {
				v = StoreDown
			}
			g.refuse(w, r, Event{Verdict: v, Domain: domain}, retryAfter(res.RetryAfter))
			return
		}
	}
	d := g.pool.Get().(*delivery)
	d.refs.Store(2) // this function, and the body's Close
	d.pool = &g.pool
	defer d.release()
	if v := d.read(r, g.cfg.MaxBody); v != Passed {
		if v == TooLarge {
			w.Header().Set("Connection", "close")
		}
		g.refuse(w, r, Event{Verdict: v, Domain: domain}, "")
		return
	}
	if g.cfg.CheckDigest && checkDigests(r.Header, d.buf) == digestMismatch {
		g.refuse(w, r, Event{Verdict: BadDigest, Domain: domain}, "")
		return
	}
	if g.filters != nil {
		var fv filterVerdict
		fv, d.tmp = g.filters.apply(d.buf, d.tmp)
		switch {
		case fv.tooDeep:
			g.refuse(w, r, Event{Verdict: TooDeep, Domain: domain}, "")
			return
		case fv.rule >= 0:
			f := &g.filters.list[fv.rule]
			v := Dropped
			if f.reject {
				v = Rejected
			}
			g.refuse(w, r, Event{Verdict: v, Domain: domain, Rule: f.name}, "")
			return
		}
	}
	if g.observe != nil {
		g.observe(Event{Verdict: Passed, Domain: domain})
	}
	r.Body = d
	r.ContentLength = int64(len(d.buf))
	next.ServeHTTP(w, r)
}

// refuse answers a delivery the guard decided itself and logs it: one
// line per refusal, with fixed field names.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, e Event, retry string) {
	status, text := e.Verdict.status()
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "federation delivery refused",
		slog.String("domain", e.Domain), slog.String("verdict", e.Verdict.String()), slog.String("rule", e.Rule),
		slog.String("client", g.clientAddr(r).String()), slog.String("path", r.URL.Path), slog.Int("status", status))
	if g.observe != nil {
		g.observe(e)
	}
	h := w.Header()
	if retry != "" {
		h.Set("Retry-After", retry)
	}
	h.Set("Cache-Control", "no-store")
	if text == "" {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"error":"`+text+`"}`+"\n")
}

// inWindow checks the signature's created and expires and the Date
// header against max_clock_skew.
func (g *Guard) inWindow(c *claim, h http.Header) bool {
	now := g.now()
	skew := int64(g.cfg.MaxClockSkew / time.Second)
	unix := now.Unix()
	if c.created != 0 && (c.created > unix+skew || c.created < unix-skew) {
		return false
	}
	if c.expires != 0 && c.expires < unix-skew {
		return false
	}
	dates := h["Date"]
	switch len(dates) {
	case 0:
		return true
	case 1:
		t, ok := parseHTTPDate(dates[0])
		return ok && t.Sub(now).Abs() <= g.cfg.MaxClockSkew
	}
	return false // two Date headers: two parsers could read two dates
}

// parseHTTPDate reads an HTTP date: IMF-fixdate without allocating
// ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete forms through
// http.ParseTime.
func parseHTTPDate(s string) (time.Time, bool) {
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	if len(s) == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' && s[16] == ' ' &&
		s[19] == ':' && s[22] == ':' && s[25:] == " GMT" {
		num := func(a, b int) int {
			n := 0
			for i := a; i < b; i++ {
				if !isDigit(s[i]) {
					return -1
				}
				n = n*10 + int(s[i]-'0')
			}
			return n
		}
		mon := 0
		for i := 0; i < 12; i++ {
			if s[8:11] == months[3*i:3*i+3] {
				mon = i + 1
			}
		}
		day, year, hh, mm, ss := num(5, 7), num(12, 16), num(17, 19), num(20, 22), num(23, 25)
		if mon > 0 && day >= 1 && day <= 31 && year >= 0 && hh >= 0 && hh < 24 && mm >= 0 && mm < 60 && ss >= 0 && ss < 61 {
			return time.Date(year, time.Month(mon), day, hh, mm, ss, 0, time.UTC), true
		}
		return time.Time{}, false
	}
	t, err := http.ParseTime(s)
	return t, err == nil
}

// retryAfter is d in whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64(max((d+time.Second-1)/time.Second, 1)), 10)
}

// remoteAddr is the host of r.RemoteAddr; the zero Addr when it does not
// parse.
func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr()
	}
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		a, _ := netip.ParseAddr(h)
		return a
	}
	return netip.Addr{}
}

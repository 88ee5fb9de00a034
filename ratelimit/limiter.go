// Package ratelimit owns fedigate's per-client rate limits: the rules of
// [ratelimit] compiled once, the stores that count (in memory, or in Redis
// shared by several gateways), the breaker around Redis, and the HTTP
// middleware that answers 429. The client address comes from a hook (cmd
// passes proxy.ClientAddr); the config is parsed and validated by configs.
//
// # Algorithm
//
// Each rule keeps, per client, a sliding log: the timestamps of the
// client's admitted requests that are still inside the window, at most
// limit of them, oldest first. A request is admitted when, for every rule
// it matches, fewer than limit timestamps are younger than period; it is
// then recorded in every matching rule's log, and a refused request is
// recorded nowhere. The bound is exact: for every client, rule and
// half-open interval of length period, at most limit requests are
// admitted. A timestamp t leaves the window at exactly t+period, which is
// when the next request is admitted again (Retry-After, rounded up to
// whole seconds). X-RateLimit-Reset is that moment too: the end of the
// period of the oldest counted request. Unlike GCRA or a token bucket
// (which admit up to twice the limit around a window's edge) this is what
// an admin reads "25 per 5 minutes" to mean.
//
// # Memory
//
// The memory store holds one table per rule, split into 32 shards with a
// lock each. A tracked client costs at most 9*limit + 160 bytes (its ring
// of int64 timestamps with the allocator's rounding, the entry, its index
// slots); a table tracks at most Options.MaxKeys clients (default 10000,
// rounded up to a multiple of 32), so a rule's table never exceeds
// MaxKeys*(9*limit+160) bytes: 3.9 MB for a limit of 25, 28.6 MB for the
// mastodon preset's 300-request API rule, 56.8 MB for all nine of its
// rules at once. Idle clients expire without a background task (each
// decision drops up to two expired clients from the least recently used
// end of its shard, and every 16th sweeps another shard in turn), and
// when a shard is full the least recently used client is evicted, so a
// flood of distinct addresses cannot grow the store
// (Limiter.MemoryBound reports the figure). In Redis a client's log for a
// rule is one list of at most limit integers (about 10 bytes each, plus
// the key) that expires by itself one period after its newest entry.
//
// # Redis
//
// One decision is one round trip: a Lua script (EVALSHA, falling back to
// EVAL on NOSCRIPT) that reads Redis's clock (TIME), decides every rule a
// request matches at once, and records it. Keys look like
// fedigate:rl:{CLIENT}:RULE|LIMIT|PERIOD_MS: the client is the hash tag
// (one cluster slot for a request's keys), and a rule whose limit or
// period changes starts afresh. OpenRedis documents the URL forms. A
// request never waits on Redis longer than store_timeout; after three
// failures in a row a breaker skips Redis and probes it in the background
// until it answers; meanwhile on_store_error decides.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/configs"
)

// maxMatch bounds the number of rules: a request's matching rules are
// collected on the stack.
const maxMatch = configs.MaxRules

// Options are the hooks of a Limiter; every zero value is documented.
type Options struct {
	Logger *slog.Logger // nil = slog.Default()
	// Now is the clock of the memory store; nil = time.Now. The Redis
	// store uses Redis's clock.
	Now func() time.Time
	// ClientAddr returns the client of a request; nil = the host of
	// r.RemoteAddr (cmd passes proxy.ClientAddr).
	ClientAddr func(*http.Request) netip.Addr
	// Redis is the client of store = "redis"; nil = New opens one from
	// cfg.RedisURL with OpenRedis, and the last Close closes it. A client
	// passed here is never closed by the Limiter; it should be opened
	// with ContextTimeoutEnabled so store_timeout bounds every wait.
	Redis redis.UniversalClient
	// Streaming reports whether a request goes to the streaming backend,
	// where Sec-WebSocket-Protocol carries the token (Mastodon's web UI
	// puts it there); nil = no request does (cmd passes proxy.IsStreaming).
	Streaming func(*http.Request) bool
	// Observe is called once per decision: for each rule that counted a
	// request (or Allow call), and for each rule that refused one (a
	// request another rule refused is not observed for the rules it
	// matched: none counted it); nil = none.
	Observe func(Decision)
	// MaxKeys is the most clients the memory store tracks per rule;
	// 0 = 10000.
	MaxKeys int
	// MaxMemory is the most memory, in bytes, the memory store may need
	// for the rules (see MemoryBound): New refuses rules that could need
	// more; 0 = 256 MiB.
	MaxMemory int64
	// ProbeInterval is how often a Redis marked down is probed, and the
	// Retry-After of a 503 while on_store_error = "deny"; 0 = 1s.
	ProbeInterval time.Duration
}

// Result is one decision: all a response needs.
type Result struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // 0 when allowed
	Reset      time.Time     // when the oldest counted request leaves the window
}

// Decision is what Observe receives: one rule's verdict on one request.
type Decision struct {
	Rule   string
	Client netip.Addr // as counted: IPv4, or the IPv6 network address
	Result Result
	Err    error // non-nil when the store failed and on_store_error decided
}

// Limiter applies the rules of one [ratelimit] section. It is safe for
// concurrent use.
type Limiter struct {
	cfg        configs.RateLimit
	opts       Options
	log        *slog.Logger
	now        func() time.Time
	clientAddr func(*http.Request) netip.Addr
	keyer      keyer
	deny       bool

	rules  []rule
	byName map[string]int
	tables []*table // memory store: the table of each rule
	mem    *memStore
	red    *redisStore

	keyedState

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and builds a Limiter. With store = "redis" it opens
// the client (unless Options.Redis is set) but does not wait for Redis:
// until it answers, on_store_error decides and Ready reports it.
func New(cfg configs.RateLimit, opts Options) (*Limiter, error) {
	return build(cfg, opts, nil)
}

// Reconfigure builds a Limiter for new rules. When the store settings
// (store, redis_url) are unchanged it shares the store: rules with the
// same name, limit and period keep their counts, changed rules start from
// zero. Swap the new Limiter in, then Close the old one; the shared store
// stays open until every Limiter using it is closed. On error nothing
// changes and l keeps working.
func (l *Limiter) Reconfigure(cfg configs.RateLimit) (*Limiter, error) {
	if cfg.Store != l.cfg.Store || (cfg.Store == configs.StoreRedis && cfg.RedisURL != l.cfg.RedisURL) {
		opts := l.opts
		opts.Redis = nil
		return build(cfg, opts, nil)
	}
	return build(cfg, l.opts, l)
}

func build(cfg configs.RateLimit, opts Options, from *Limiter) (*Limiter, error) {
	var errs []error
	switch cfg.Store {
	case configs.StoreMemory, configs.StoreRedis:
	default:
		errs = append(errs, fmt.Errorf("store %q: want %q or %q", cfg.Store, configs.StoreMemory, configs.StoreRedis))
	}
	switch cfg.OnStoreError {
	case configs.OnErrAllow, configs.OnErrDeny:
	default:
		errs = append(errs, fmt.Errorf("on_store_error %q: want %q or %q", cfg.OnStoreError, configs.OnErrAllow, configs.OnErrDeny))
	}
	if cfg.StoreTimeout <= 0 || cfg.StoreTimeout > configs.MaxStoreTimeout {
		errs = append(errs, fmt.Errorf("store_timeout %v: want more than 0 and at most %v", cfg.StoreTimeout, configs.MaxStoreTimeout))
	}
	if cfg.IPv6Prefix < configs.MinIPv6Prefix || cfg.IPv6Prefix > configs.MaxIPv6Prefix {
		errs = append(errs, fmt.Errorf("ipv6_prefix %d: want %d to %d", cfg.IPv6Prefix, configs.MinIPv6Prefix, configs.MaxIPv6Prefix))
	}
	if len(cfg.Rules) > maxMatch {
		errs = append(errs, fmt.Errorf("%d rules: at most %d", len(cfg.Rules), maxMatch))
	}
	if opts.MaxKeys < 0 || opts.ProbeInterval < 0 || opts.MaxMemory < 0 {
		errs = append(errs, errors.New("MaxKeys, MaxMemory and ProbeInterval must not be negative"))
	}
	l := &Limiter{cfg: cfg, opts: opts, log: opts.Logger, now: opts.Now, clientAddr: opts.ClientAddr,
		keyer: newKeyer(cfg.IPv6Prefix), deny: cfg.OnStoreError == configs.OnErrDeny,
		byName: map[string]int{}}
	for _, r := range cfg.Rules {
		c, err := compileRule(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := l.byName[c.name]; dup {
			errs = append(errs, fmt.Errorf("rule %q is defined twice", c.name))
			continue
		}
		l.byName[c.name] = len(l.rules)
		l.rules = append(l.rules, c)
	}
	for _, p := range cfg.Exempt {
		if !p.IsValid() {
			errs = append(errs, errors.New("exempt: an invalid prefix"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.clientAddr == nil {
		l.clientAddr = remoteAddr
	}
	if l.opts.MaxKeys == 0 {
		l.opts.MaxKeys = 10000
	}
	if l.opts.ProbeInterval == 0 {
		l.opts.ProbeInterval = time.Second
	}
	if l.opts.MaxMemory == 0 {
		l.opts.MaxMemory = 256 << 20
	}
	if cfg.Store == configs.StoreMemory {
		if err := checkMemoryBudget(l.rules, l.opts.MaxKeys, l.opts.MaxMemory); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.Store == configs.StoreMemory:
		if from != nil {
			l.mem = from.mem
		} else {
			l.mem = newMemStore(l.opts.MaxKeys, opts.Now)
		}
		for i := range l.rules {
			l.tables = append(l.tables, l.mem.acquire(&l.rules[i]))
		}
	case from != nil:
		l.red = from.red
		l.red.acquire()
	default:
		c, owned := opts.Redis, false
		if c == nil {
			var err error
			if c, err = OpenRedis(cfg.RedisURL); err != nil {
				return nil, err
			}
			owned = true
		}
		l.red = newRedisStore(c, owned, l.log, l.opts.ProbeInterval, cfg.StoreTimeout)
	}
	return l, nil
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
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a
}

// exempted reports whether a (unmapped) is exempt from rule r.
func (l *Limiter) exempted(r *rule, a netip.Addr) bool {
	if l.exemptAll(a) {
		return true
	}
	for _, p := range r.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// decide decides a request of client against the rules idx; out[j]
// receives the result of rule idx[j].
func (l *Limiter) decide(ctx context.Context, idx []int, client netip.Addr, out []Result) (bool, error) {
	if l.mem != nil && len(idx) == 1 {
		l.mem.decideOne(l.tables[idx[0]], l.keyer.keyOf(client), l.mem.clock(), &out[0])
		return out[0].Allowed, nil
	}
	if l.mem != nil {
		return l.decideMemory(idx, l.keyer.keyOf(client), out), nil
	}
	_, counted := l.keyer.key(client)
	rules := make([]*rule, len(idx))
	for j, i := range idx {
		rules[j] = &l.rules[i]
	}
	return l.red.decide(ctx, l.cfg.StoreTimeout, l.keyer.text(counted), rules, out)
}

// decideMemory decides against several memory tables at once.
func (l *Limiter) decideMemory(idx []int, key clientKey, out []Result) bool {
	var tabs [maxMatch]*table
	var order [maxMatch]int
	for j, i := range idx {
		tabs[j] = l.tables[i]
		k := j
		for k > 0 && tabs[order[k-1]].seq > tabs[j].seq {
			order[k] = order[k-1]
			k--
		}
		order[k] = j
	}
	return l.mem.decide(tabs[:len(idx)], order[:len(idx)], key, l.mem.clock(), out)
}

// Allow decides one request of client against the named rule: one call,
// one round trip. An exempt client is allowed without being counted. When
// the store fails, the Result follows on_store_error and the error says
// why (errors.Is(err, ErrStoreDown) while the breaker is open).
func (l *Limiter) Allow(ctx context.Context, name string, client netip.Addr) (Result, error) {
	i, ok := l.byName[name]
	if !ok {
		return Result{}, fmt.Errorf("ratelimit: no rule named %q", name)
	}
	r := &l.rules[i]
	if l.exempted(r, client.Unmap()) {
		return Result{Allowed: true, Limit: r.limit, Remaining: r.limit, Reset: l.now()}, nil
	}
	var res Result
	var err error
	if l.mem != nil { // never fails
		l.mem.decideOne(l.tables[i], l.keyer.keyOf(client), l.mem.clock(), &res)
	} else {
		var out [1]Result
		idx := [1]int{i}
		if _, err = l.decide(ctx, idx[:], client, out[:]); err != nil {
			out[0] = l.storeFailed(r)
			err = fmt.Errorf("ratelimit: rule %q: %w", name, err)
		}
		res = out[0]
	}
	if l.opts.Observe != nil {
		_, counted := l.keyer.key(client)
		l.opts.Observe(Decision{Rule: name, Client: counted, Result: res, Err: err})
	}
	// Copied field by field: res was written so, and a whole copy would
	// reload it in 16-byte pieces spanning narrower stores, which the CPU
	// cannot forward (a stall of several ns).
	return Result{res.Allowed, res.Limit, res.Remaining, res.RetryAfter, res.Reset}, err
}

// storeFailed is the Result on_store_error gives when the store failed.
func (l *Limiter) storeFailed(r *rule) Result {
	if l.deny {
		return Result{Limit: r.limit, RetryAfter: l.opts.ProbeInterval, Reset: l.now().Add(l.opts.ProbeInterval)}
	}
	return Result{Allowed: true, Limit: r.limit, Remaining: r.limit, Reset: l.now()}
}

// Ready reports whether the store is reachable (for /readyz). The memory
// store always is.
func (l *Limiter) Ready(ctx context.Context) error {
	if l.red == nil {
		return nil
	}
	return l.red.ready(ctx)
}

// StoreDown reports whether the store's breaker is open: Redis failed
// three times in a row and is skipped (on_store_error decides) until a
// background probe gets an answer. One failure, or a few apart, leave it
// closed. The memory store never fails: always false. Limiters that
// share a store by Reconfigure report the same breaker.
func (l *Limiter) StoreDown() bool {
	return l.red != nil && l.red.down.Load()
}

// Close releases the Limiter's share of the store: tables no open Limiter
// uses are dropped, and a Redis client opened by New is closed with the
// last Limiter using it. Safe to call twice.
func (l *Limiter) Close() error {
	l.closeOnce.Do(func() {
		l.closeKeyed()
		if l.mem != nil {
			for i := range l.rules {
				l.mem.release(l.rules[i].id)
			}
			return
		}
		l.closeErr = l.red.release()
	})
	return l.closeErr
}

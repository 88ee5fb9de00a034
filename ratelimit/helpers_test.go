package ratelimit

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// logBuffer captures slog output for assertions.
type logBuffer = testenv.LogBuffer

// store is one store under the conformance table.
type store struct {
	name string
	// limiter builds a Limiter on this store; its counts start empty.
	limiter func(t *testing.T, cfg configs.RateLimit, opts Options) *Limiter
	// wait lets d pass: the memory store's clock moves, Redis sleeps.
	wait func(d time.Duration)
	// short is the period of window tests: Redis runs on its own clock.
	short time.Duration
	exact bool // the clock is injected: edges are tested to the nanosecond
}

func baseConfig(rules ...configs.Rule) configs.RateLimit {
	return configs.RateLimit{Store: configs.StoreMemory, OnStoreError: configs.OnErrAllow,
		StoreTimeout: 200 * time.Millisecond, IPv6Prefix: 64, Rules: rules}
}

// stores returns the memory store (with its clock) and a Redis store on a
// private redis-server; each limiter call starts from an empty database.
func stores(t *testing.T) []store {
	clock := testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	srv := testenv.Redis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { admin.Close() })
	return []store{
		{
			name: "memory",
			limiter: func(t *testing.T, cfg configs.RateLimit, opts Options) *Limiter {
				cfg.Store = configs.StoreMemory
				opts.Now = clock.Now
				return mustNew(t, cfg, opts)
			},
			wait:  clock.Advance,
			short: time.Minute,
			exact: true,
		},
		{
			name: "redis",
			limiter: func(t *testing.T, cfg configs.RateLimit, opts Options) *Limiter {
				if err := admin.FlushAll(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
				cfg.Store, cfg.RedisURL = configs.StoreRedis, "redis://"+srv.Addr+"/0"
				return mustNew(t, cfg, opts)
			},
			wait:  time.Sleep,
			short: configs.MinRulePeriod, // the shortest a rule may have: Redis keeps its own clock
		},
	}
}

func mustNew(t *testing.T, cfg configs.RateLimit, opts Options) *Limiter {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func newRule(name string, limit int, period time.Duration, paths ...string) configs.Rule {
	return configs.Rule{Name: name, Limit: limit, Period: period, Paths: paths}
}

// request sends one request through h from remote ("ip:port" or a bare
// IP) and returns the recorder and whether next ran.
func request(h func(http.Handler) http.Handler, method, path, remote string, header ...string) (*httptest.ResponseRecorder, bool) {
	ran := false
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true })
	r := httptest.NewRequest(method, "http://example.test"+path, nil)
	if a, err := netip.ParseAddr(remote); err == nil {
		remote = netip.AddrPortFrom(a, 40000).String()
	}
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h(next).ServeHTTP(w, r)
	return w, ran
}

func allow(t *testing.T, l *Limiter, name, client string) Result {
	t.Helper()
	res, err := l.Allow(context.Background(), name, netip.MustParseAddr(client))
	if err != nil {
		t.Fatalf("Allow(%s, %s): %v", name, client, err)
	}
	return res
}

func mustPrefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

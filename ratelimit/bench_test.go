package ratelimit

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// One memory-store decision (target: <= 100 ns, 0 allocs). The limit is
// never reached, so every iteration records.
func BenchmarkMemoryDecision(b *testing.B) {
	l, err := New(baseConfig(newRule("r", configs.MaxRuleLimit, configs.MinRulePeriod, "/x")), Options{MaxMemory: 1 << 40, Now: steppingClock()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx, c := context.Background(), netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Allow(ctx, "r", c); err != nil {
			b.Fatal(err)
		}
	}
}

// One memory-store decision on a sign-up-like rule (25 per 5 minutes)
// for 1024 clients in turn: past the warm-up most decisions refuse.
func BenchmarkMemoryDecisionSignUpRule(b *testing.B) {
	l, err := New(baseConfig(newRule("r", 25, 5*time.Minute, "/x")), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var clients [1024]netip.Addr
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		_, _ = l.Allow(ctx, "r", clients[i%len(clients)])
	}
}

// Memory decisions from one goroutine per core at once, on the sign-up-like
// rule, each goroutine with its own 1024 clients (as connections from
// different clients are): ns/op is wall time, so it falls below the serial
// figure as long as the shards do not contend.
func BenchmarkMemoryDecisionParallel(b *testing.B) {
	l, err := New(baseConfig(newRule("r", 25, 5*time.Minute, "/x")), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		g := byte(next.Add(1))
		i := 0
		for pb.Next() {
			i++
			_, _ = l.Allow(context.Background(), "r", netip.AddrFrom4([4]byte{10, g, byte(i >> 8 & 3), byte(i)}))
		}
	})
}

// The same with every goroutine on the same 1024 clients in the same
// order, so both cores want the same shard at the same moment: the worst
// case for the shard locks.
func BenchmarkMemoryDecisionParallelSameClients(b *testing.B) {
	l, err := New(baseConfig(newRule("r", 25, 5*time.Minute, "/x")), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			_, _ = l.Allow(context.Background(), "r", netip.AddrFrom4([4]byte{10, 0, byte(i >> 8 & 3), byte(i)}))
		}
	})
}

// steppingClock moves a rule period on at each reading: every decision
// finds its window empty, so a benchmark measures the admitted path.
func steppingClock() func() time.Time {
	var tick atomic.Int64
	start := time.Now()
	return func() time.Time { return start.Add(time.Duration(tick.Add(1)) * configs.MinRulePeriod) }
}

// One Redis decision against a local redis-server: one round trip. Each
// iteration is another client, so every log holds one entry (Redis keeps
// its own clock: no stepping clock there).
func BenchmarkRedisDecision(b *testing.B) {
	srv := testenv.Redis(b)
	cfg := baseConfig(newRule("r", 1_000, configs.MinRulePeriod, "/x"))
	cfg.Store, cfg.RedisURL, cfg.StoreTimeout = configs.StoreRedis, "redis://"+srv.Addr+"/0", time.Second
	l, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx, c := context.Background(), netip.MustParseAddr("192.0.2.1")
	if _, err := l.Allow(ctx, "r", c); err != nil { // loads the script
		b.Fatal(err)
	}
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		i++
		c := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := l.Allow(ctx, "r", c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// as the issue asks: 50 clients (redis-benchmark's default), so this is
	// throughput; and one client, which is one round trip's latency
	b.ReportMetric(redisBenchmarkGetNs(b, srv.Addr), "redis-benchmark-get-ns/op")
	b.ReportMetric(redisBenchmarkGetNs(b, srv.Addr, "-c", "1"), "redis-benchmark-c1-get-ns/op")
}

// redisBenchmarkGetNs runs `redis-benchmark -q -n 100000 -P 1 -t get`
// (plus extra arguments) against the same server and returns its time per
// GET, for comparison.
func redisBenchmarkGetNs(b *testing.B, addr string, extra ...string) float64 {
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"-h", host, "-p", port, "-q", "-n", "100000", "-P", "1", "-t", "get"}, extra...)
	out, err := exec.Command(testenv.Binary(b, "redis-benchmark", "redis-tools"), args...).CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	// "GET: 52356.02 requests per second, p50=0.495 msec"
	text := string(out[bytes.LastIndexByte(out, '\r')+1:])
	_, rest, _ := strings.Cut(text, "GET: ")
	rps, err := strconv.ParseFloat(strings.Fields(rest + " x")[0], 64)
	if err != nil || rps <= 0 {
		b.Fatalf("redis-benchmark output %q", out)
	}
	return 1e9 / rps
}

// The middleware with the mastodon preset's rules, on a request no rule
// matches and on one that a rule counts (and admits).
func BenchmarkMiddlewareMastodon(b *testing.B) {
	def, _ := configs.Default(configs.PresetMastodon)
	cfg := def.RateLimit
	for i := range cfg.Rules {
		cfg.Rules[i].Limit = configs.MaxRuleLimit // never refuse: measure the admitted path
		cfg.Rules[i].Period = configs.MinRulePeriod
	}
	// each decision a period after the last: every window is empty again
	l, err := New(cfg, Options{MaxMemory: 1 << 40, Now: steppingClock()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	h := l.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, c := range []struct{ name, method, path string }{
		{"NoMatch", "GET", "/@alice/109876543210"},
		{"Match", "POST", "/auth/sign_in"},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(c.method, "http://example.test"+c.path, nil)
			r.RemoteAddr = "192.0.2.1:40000"
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

package ratelimit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

func redisConfig(addr string, rules ...configs.Rule) configs.RateLimit {
	cfg := baseConfig(rules...)
	cfg.Store, cfg.RedisURL = configs.StoreRedis, "redis://"+addr+"/0"
	return cfg
}

func TestOpenRedisURLForms(t *testing.T) {
	cases := []struct {
		url  string
		want string
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client"},
		{"rediss://u:p@127.0.0.1:6380/1", "*redis.Client"},
		{"unix:///run/redis.sock?db=2", "*redis.Client"},
		{"redis://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380", "*redis.Client"}, // failover client
		{"redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", "*redis.ClusterClient"},
	}
	for _, c := range cases {
		cl, err := OpenRedis(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if got := typeName(cl); got != c.want {
			t.Errorf("%s: got %s, want %s", c.url, got, c.want)
		}
		cl.Close()
	}
	for _, bad := range []string{"redis://u:hunter2@h:1?bogus=1", "redis://u:hunter2@h:1?master_name=m&bogus=1", "redis://u:hunter2@h:1?addr=h:2&bogus=1", "http://u:hunter2@h", "::"} {
		if _, err := OpenRedis(bad); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: err = %v (want an error that hides the password)", bad, err)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	case *redis.Client:
		return "*redis.Client"
	default:
		return "other"
	}
}

// A single-node Redis Cluster (all slots on one node): the script's keys
// share one hash tag, so it runs there.
func TestRedisCluster(t *testing.T) {
	addr := testenv.Loopback(t)
	host, port, _ := net.SplitHostPort(addr)
	testenv.Start(t, addr, testenv.Binary(t, "redis-server", "redis-server"),
		"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--cluster-enabled", "yes", "--cluster-config-file", t.TempDir()+"/nodes.conf")
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	if err := admin.Do(context.Background(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for admin.ClusterInfo(context.Background()).Val() == "" || !strings.Contains(admin.ClusterInfo(context.Background()).Val(), "cluster_state:ok") {
		if time.Now().After(deadline) {
			t.Fatal("cluster did not become ok")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cfg := baseConfig(newRule("a", 2, time.Hour, "/api/v1/accounts"), newRule("b", 3, time.Hour, "/api/*"))
	cfg.Store, cfg.RedisURL, cfg.StoreTimeout = configs.StoreRedis, "redis://"+addr+"?addr="+addr, time.Second
	l := mustNew(t, cfg, Options{})
	if _, ok := l.red.client.(*redis.ClusterClient); !ok {
		t.Fatalf("not a cluster client: %T", l.red.client)
	}
	for i, want := range []bool{true, true, false} {
		w, ran := request(l.Middleware, "POST", "/api/v1/accounts", "192.0.2.1")
		if ran != want {
			t.Fatalf("request %d: ran=%v code=%d", i, ran, w.Code)
		}
	}
}

// Two gateways on one Redis count together exactly.
func TestTwoGatewaysCountTogether(t *testing.T) {
	srv := testenv.Redis(t)
	cfg := redisConfig(srv.Addr, newRule("r", 10, time.Hour, "/x"))
	a, b := mustNew(t, cfg, Options{}), mustNew(t, cfg, Options{})
	for i := 0; i < 10; i++ {
		l := a
		if i%2 == 1 {
			l = b
		}
		if res := allow(t, l, "r", "192.0.2.1"); !res.Allowed || res.Remaining != 9-i {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	if allow(t, a, "r", "192.0.2.1").Allowed || allow(t, b, "r", "192.0.2.1").Allowed {
		t.Fatal("11th request admitted")
	}
}

func TestTwoGatewaysCountTogetherConcurrently(t *testing.T) {
	srv := testenv.Redis(t)
	cfg := redisConfig(srv.Addr, newRule("r", 100, time.Hour, "/x"))
	cfg.StoreTimeout = 2 * time.Second
	gw := []*Limiter{mustNew(t, cfg, Options{}), mustNew(t, cfg, Options{})}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				res, err := gw[g%2].Allow(context.Background(), "r", netip.MustParseAddr("2001:db8::1"))
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 100 {
		t.Fatalf("admitted %d of 320 concurrent requests, want exactly 100", admitted.Load())
	}
}

// Redis dies mid-test and comes back on the same port: the rule follows
// on_store_error, the breaker logs each transition once, and recovery
// needs nobody.
func TestRedisKilledAndRestarted(t *testing.T) {
	for _, policy := range []string{configs.OnErrAllow, configs.OnErrDeny} {
		t.Run(policy, func(t *testing.T) {
			srv := testenv.Redis(t)
			buf := &logBuffer{}
			cfg := redisConfig(srv.Addr, newRule("r", 2, time.Hour, "/x"))
			cfg.OnStoreError = policy
			l := mustNew(t, cfg, Options{Logger: buf.Logger(), ProbeInterval: 50 * time.Millisecond})
			request(l.Middleware, "GET", "/x", "192.0.2.1")
			request(l.Middleware, "GET", "/x", "192.0.2.1")
			if _, ran := request(l.Middleware, "GET", "/x", "192.0.2.1"); ran {
				t.Fatal("limit not applied while Redis is up")
			}
			srv.Stop()
			for i := 0; i < 20; i++ {
				start := time.Now()
				w, ran := request(l.Middleware, "GET", "/x", "192.0.2.1")
				if time.Since(start) > cfg.StoreTimeout+100*time.Millisecond {
					t.Fatalf("request waited %v on a dead Redis", time.Since(start))
				}
				if policy == configs.OnErrAllow && !ran {
					t.Fatalf("allow: request %d refused (%d)", i, w.Code)
				}
				if policy == configs.OnErrDeny && (ran || w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), `"error"`)) {
					t.Fatalf("deny: request %d: ran=%v code=%d %v", i, ran, w.Code, w.Header())
				}
			}
			if err := l.Ready(context.Background()); err == nil {
				t.Fatal("Ready with Redis down")
			}
			if _, err := l.Allow(context.Background(), "r", netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrStoreDown) {
				t.Fatalf("Allow while down: %v", err)
			}
			testenv.RedisAt(t, srv.Addr)
			waitFor(t, 5*time.Second, func() bool { return l.Ready(context.Background()) == nil && !l.red.down.Load() })
			// a fresh Redis: counting starts over, and works
			request(l.Middleware, "GET", "/x", "192.0.2.1")
			request(l.Middleware, "GET", "/x", "192.0.2.1")
			if _, ran := request(l.Middleware, "GET", "/x", "192.0.2.1"); ran {
				t.Fatal("limit not applied after recovery")
			}
			if d, u := buf.Count(`msg="rate limit store down"`), buf.Count(`msg="rate limit store up"`); d != 1 || u != 1 {
				t.Fatalf("want each transition logged once, got down=%d up=%d:\n%s", d, u, buf)
			}
		})
	}
}

// A Redis that accepts connections and never answers: every decision
// returns within store_timeout, then the breaker skips it.
func TestAttackRedisBlackHole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, ln, func(c net.Conn) { defer c.Close(); _, _ = io.Copy(io.Discard, c) }) // reads, never writes
	buf := &logBuffer{}
	cfg := redisConfig(ln.Addr().String(), newRule("r", 2, time.Hour, "/x"))
	cfg.StoreTimeout = 150 * time.Millisecond
	l := mustNew(t, cfg, Options{Logger: buf.Logger(), ProbeInterval: time.Hour})
	for i := 0; i < 5; i++ {
		start := time.Now()
		_, ran := request(l.Middleware, "GET", "/x", "192.0.2.1")
		if d := time.Since(start); d > cfg.StoreTimeout+150*time.Millisecond {
			t.Fatalf("request %d waited %v (store_timeout %v)", i, d, cfg.StoreTimeout)
		}
		if !ran {
			t.Fatalf("on_store_error = allow, request %d refused", i)
		}
	}
	if buf.Count(`msg="rate limit store down"`) != 1 {
		t.Fatalf("breaker did not open once:\n%s", buf)
	}
	start := time.Now()
	if _, err := l.Allow(context.Background(), "r", netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrStoreDown) || time.Since(start) > 10*time.Millisecond {
		t.Fatalf("open breaker: err=%v after %v", err, time.Since(start))
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The Sentinel URL form: the client asks a real sentinel for the master.
func TestRedisSentinel(t *testing.T) {
	master := testenv.Redis(t)
	_, mport, _ := net.SplitHostPort(master.Addr)
	addr := testenv.Loopback(t)
	host, port, _ := net.SplitHostPort(addr)
	conf := t.TempDir() + "/sentinel.conf"
	text := "bind " + host + "\nport " + port + "\nprotected-mode no\nsentinel monitor mymaster 127.0.0.1 " + mport + " 1\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, addr, testenv.Binary(t, "redis-server", "redis-server"), conf, "--sentinel")
	cfg := redisConfig(addr, newRule("r", 2, time.Hour, "/x"))
	cfg.RedisURL, cfg.StoreTimeout = "redis://"+addr+"?master_name=mymaster", 2*time.Second
	l := mustNew(t, cfg, Options{})
	if err := l.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		if res := allow(t, l, "r", "192.0.2.1"); res.Allowed != want {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	admin := redis.NewClient(&redis.Options{Addr: master.Addr})
	defer admin.Close()
	keys, err := admin.Keys(context.Background(), KeyPrefix+"*").Result()
	if err != nil || len(keys) != 1 || keys[0] != KeyPrefix+"{192.0.2.1}:r|2|3600000" {
		t.Fatalf("keys on the master: %q %v", keys, err)
	}
}

// The script survives SCRIPT FLUSH (EVALSHA falls back to EVAL on
// NOSCRIPT), and its keys carry the prefix, the client's hash tag and a
// TTL no longer than the period.
func TestRedisScriptFlushAndKeyExpiry(t *testing.T) {
	srv := testenv.Redis(t)
	l := mustNew(t, redisConfig(srv.Addr, newRule("r", 3, 10*time.Second, "/x")), Options{})
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := context.Background()
	allow(t, l, "r", "2001:db8:5:6::1")
	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if res := allow(t, l, "r", "2001:db8:5:6::2"); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("after SCRIPT FLUSH: %+v", res)
	}
	key := KeyPrefix + "{2001:db8:5:6::/64}:r|3|10000"
	ttl, err := admin.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > 10*time.Second+time.Millisecond {
		t.Fatalf("PTTL %s = %v, %v", key, ttl, err)
	}
	if n, _ := admin.LLen(ctx, key).Result(); n != 2 {
		t.Fatalf("log length %d, want 2", n)
	}
}

package signupgate

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// spendThenReplay spends a fresh pass of alice on tg, applies next as a
// reload does, and replays the pass: it must be refused before the
// backend sees it.
func spendThenReplay(t *testing.T, tg *testGate, next *configs.Config) {
	t.Helper()
	pass := tg.passFor(t, "192.0.2.1")
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusFound {
		t.Fatalf("first sign-up: %d", w.Code)
	}
	tg.reconfigure(t, next)
	seen := tg.seen.Load()
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusForbidden || tg.seen.Load() != seen {
		t.Fatalf("replay after the reload: %d, backend saw %d more", w.Code, tg.seen.Load()-seen)
	}
}

// A pass spent before a reload stays spent after it, whether the reload
// leaves [signup] alone or changes it, in memory and in Redis.
func TestAttackReplayAcrossReload(t *testing.T) {
	srv := testenv.Redis(t)
	for _, store := range []struct{ name, kind, url string }{
		{"memory", configs.StoreMemory, ""},
		{"redis", configs.StoreRedis, "redis://" + srv.Addr + "/0"},
	} {
		for _, change := range []struct {
			name string
			edit func(*configs.Config)
		}{
			{"unchanged", func(*configs.Config) {}},
			{"signup changed", func(c *configs.Config) { c.Signup.API = configs.APIDeny; c.Signup.PassTTL = 2 * time.Hour }},
		} {
			t.Run(store.name+"/"+change.name, func(t *testing.T) {
				cfg := gateConfig(testConfig(), mastodonRoutes(), t.TempDir())
				cfg.RateLimit = configs.RateLimit{Store: store.kind, RedisURL: store.url}
				tg := newTestGateOf(t, cfg, nil)
				next := *cfg
				change.edit(&next)
				spendThenReplay(t, tg, &next)
			})
		}
	}
}

// The Guard opens its own Redis client from ratelimit.redis_url; a reload
// on the same URL shares it (closing the old Guard leaves it open), a
// reload onto another Redis opens a new one, and the old is closed with
// the last Guard using it.
func TestGuardOwnsItsRedisClientAcrossReloads(t *testing.T) {
	one, two := testenv.Redis(t), testenv.Redis(t)
	cfg := gateConfig(testConfig(), mastodonRoutes(), t.TempDir())
	cfg.RateLimit = configs.RateLimit{Store: configs.StoreRedis, RedisURL: "redis://" + one.Addr + "/0"}
	tg := newTestGateOf(t, cfg, nil)
	first := tg.g.spent.owned
	if first == nil {
		t.Fatal("no client opened from ratelimit.redis_url")
	}
	same := *cfg
	same.Signup.API = configs.APIDeny
	tg.reconfigure(t, &same)
	if tg.g.spent.owned != first || first.Ping(context.Background()).Err() != nil {
		t.Fatal("a reload on the same Redis did not keep the client open and shared")
	}
	other := same
	other.RateLimit.RedisURL = "redis://" + two.Addr + "/0"
	tg.reconfigure(t, &other)
	if tg.g.spent.owned == first {
		t.Fatal("a reload onto another Redis kept the old client")
	}
	if first.Ping(context.Background()).Err() == nil {
		t.Fatal("the old client is still open after its last Guard closed")
	}
	pass := tg.passFor(t, "192.0.2.1")
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusFound {
		t.Fatalf("sign-up on the new Redis: %d", w.Code)
	}
	if n := tg.g.spent.owned.DBSize(context.Background()).Val(); n == 0 {
		t.Fatal("the spent pass and challenge are not in the new Redis")
	}
}

// A refused Reconfigure changes nothing: the running Guard still refuses
// a spent pass and admits a fresh one.
func TestReconfigureRefusedKeepsRunningGuard(t *testing.T) {
	cfg := gateConfig(testConfig(), mastodonRoutes(), t.TempDir())
	tg := newTestGateOf(t, cfg, nil)
	pass := tg.passFor(t, "192.0.2.1")
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusFound {
		t.Fatalf("sign-up: %d", w.Code)
	}
	bad := *cfg
	bad.Signup.PowDifficulty = configs.MaxPowDifficulty + 1
	if g, err := tg.g.Reconfigure(&bad); err == nil || g != nil {
		t.Fatal("pow_difficulty above the bound accepted")
	}
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusForbidden {
		t.Fatalf("replay after a refused reload: %d", w.Code)
	}
	if w := tg.do("POST", "/auth", "192.0.2.1", tg.passFor(t, "192.0.2.1"), formOf()); w.Code != http.StatusFound {
		t.Fatalf("a fresh pass after a refused reload: %d", w.Code)
	}
}

// A surge lock-down in force stays on across a reload that keeps the
// surge settings: a reload must not lift it.
func TestSurgeLockdownSurvivesReload(t *testing.T) {
	s := testConfig()
	s.SurgeThreshold, s.SurgeWindow, s.SurgeHold, s.SurgeExtraBits = 1, time.Minute, 10*time.Minute, 2
	cfg := gateConfig(s, mastodonRoutes(), t.TempDir())
	tg := newTestGateOf(t, cfg, nil)
	for range 3 {
		tg.do("POST", "/api/v1/accounts", "192.0.2.7", "", formOf())
	}
	if !tg.g.surge.active(tg.clk.Now()) {
		t.Fatal("no surge after three API sign-ups with threshold 1")
	}
	next := *cfg
	next.Signup.PassTTL = 2 * time.Hour
	tg.reconfigure(t, &next)
	if !tg.g.surge.active(tg.clk.Now()) {
		t.Fatal("the reload lifted the lock-down")
	}
	if w := tg.do("POST", "/api/v1/accounts", "192.0.2.8", "", formOf()); w.Code != http.StatusForbidden {
		t.Fatalf("API sign-up during the kept lock-down: %d", w.Code)
	}
}

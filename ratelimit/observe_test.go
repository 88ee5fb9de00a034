package ratelimit

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// Observe sees one Decision per counting rule per request, with the
// client as counted; uncounted requests are not observed, and a refused
// one only by the rule that refused it (the metrics count it limited by
// that rule alone).
func TestObserveOncePerDecision(t *testing.T) {
	rules := []configs.Rule{newRule("a", 1, time.Minute, "/api/v1/accounts"), newRule("b", 5, time.Minute, "/api/*")}
	t.Run("memory", func(t *testing.T) { testObserveOncePerDecision(t, baseConfig(rules...)) })
	t.Run("redis", func(t *testing.T) { testObserveOncePerDecision(t, redisConfig(testenv.Redis(t).Addr, rules...)) })
}

func testObserveOncePerDecision(t *testing.T, cfg configs.RateLimit) {
	var mu sync.Mutex
	var got []Decision
	obs := func(d Decision) { mu.Lock(); got = append(got, d); mu.Unlock() }
	clock := testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	l := mustNew(t, cfg, Options{Now: clock.Now, Observe: obs})
	request(l.Middleware, "POST", "/api/v1/accounts", "2001:db8:1:2::7")
	request(l.Middleware, "POST", "/api/v1/accounts", "2001:db8:1:2::7")
	request(l.Middleware, "GET", "/about", "2001:db8:1:2::7")
	if _, err := l.Allow(context.Background(), "b", netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d decisions observed, want 4: %+v", len(got), got)
	}
	want := []struct {
		rule    string
		allowed bool
	}{{"a", true}, {"b", true}, {"a", false}, {"b", true}}
	for i, w := range want {
		if got[i].Rule != w.rule || got[i].Result.Allowed != w.allowed || got[i].Err != nil {
			t.Errorf("decision %d: %+v, want rule %s allowed %v", i, got[i], w.rule, w.allowed)
		}
	}
	if got[0].Client != netip.MustParseAddr("2001:db8:1:2::") {
		t.Errorf("client %v, want the /64", got[0].Client)
	}
	if _, err := l.Allow(context.Background(), "nope", netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("unknown rule accepted")
	}
	if err := l.Ready(context.Background()); err != nil {
		t.Errorf("store not ready: %v", err)
	}
	if err := l.Close(); err != nil || l.Close() != nil {
		t.Errorf("Close twice: %v", err)
	}
}

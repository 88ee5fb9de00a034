package ratelimit

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

// Reconfigure keeps the counts of rules whose name, limit and period are
// unchanged, resets changed ones, and the old Limiter's Close leaves the
// shared store to the new one.
func TestReconfigureKeepsUnchangedCounts(t *testing.T) {
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			cfg := baseConfig(newRule("same", 3, time.Hour, "/a"), newRule("changed", 3, time.Hour, "/b"), newRule("dropped", 3, time.Hour, "/c"))
			old := s.limiter(t, cfg, Options{})
			for i := 0; i < 2; i++ {
				allow(t, old, "same", "192.0.2.1")
				allow(t, old, "changed", "192.0.2.1")
			}
			next := baseConfig(newRule("changed", 5, time.Hour, "/b"), newRule("same", 3, time.Hour, "/a"), newRule("added", 1, time.Hour, "/d"))
			next.Store, next.RedisURL = old.cfg.Store, old.cfg.RedisURL
			l, err := old.Reconfigure(next)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			if res := allow(t, l, "same", "192.0.2.1"); !res.Allowed || res.Remaining != 0 {
				t.Fatalf("unchanged rule lost its count: %+v", res)
			}
			if res := allow(t, l, "same", "192.0.2.1"); res.Allowed {
				t.Fatalf("unchanged rule over its limit admitted: %+v", res)
			}
			if res := allow(t, l, "changed", "192.0.2.1"); !res.Allowed || res.Remaining != 4 {
				t.Fatalf("changed rule kept the old count: %+v", res)
			}
			if _, err := l.Allow(context.Background(), "dropped", netip.MustParseAddr("192.0.2.1")); err == nil {
				t.Fatal("dropped rule still answers")
			}
			if err := l.Ready(context.Background()); err != nil {
				t.Fatalf("old Close closed the shared store: %v", err)
			}
			if l.mem != nil && len(l.mem.tables) != 3 {
				t.Fatalf("memory store holds %d tables after the old Limiter closed, want 3", len(l.mem.tables))
			}
		})
	}
}

// A config that does not build leaves the running Limiter as it was.
func TestReconfigureRefusesBadConfig(t *testing.T) {
	l := mustNew(t, baseConfig(newRule("r", 1, time.Hour, "/a")), Options{Now: testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)).Now})
	bad := baseConfig(newRule("r", 0, time.Hour, "/a"), newRule("r", 1, time.Hour, "/a"))
	if nl, err := l.Reconfigure(bad); err == nil || nl != nil {
		t.Fatalf("bad config accepted: %v", err)
	}
	if res := allow(t, l, "r", "192.0.2.1"); !res.Allowed {
		t.Fatal("old limiter broken by a failed reload")
	}
}

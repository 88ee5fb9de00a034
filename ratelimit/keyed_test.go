package ratelimit

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// TestKeyedLimit: a keyed limit counts per client and key, in the memory
// store and in Redis alike; a Keyed made again from a reconfigured
// Limiter keeps its counts.
func TestKeyedLimit(t *testing.T) {
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			l := st.limiter(t, baseConfig(), Options{})
			k, err := l.Keyed("federation", 2, st.short)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
			for i, want := range []bool{true, true, false} {
				res, err := k.Allow(ctx, a, "spam.example")
				if err != nil || res.Allowed != want {
					t.Fatalf("call %d: allowed %v (err %v), want %v", i, res.Allowed, err, want)
				}
				if !want && res.RetryAfter <= 0 {
					t.Fatalf("refused without Retry-After: %+v", res)
				}
			}
			if res, _ := k.Allow(ctx, a, "real.example"); !res.Allowed {
				t.Fatal("another key of the same client was refused")
			}
			if res, _ := k.Allow(ctx, b, "spam.example"); !res.Allowed {
				t.Fatal("the same key from another client was refused")
			}
			// IPv6: one /64 counts as one client
			v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
			k.Allow(ctx, v6a, "x.example")
			k.Allow(ctx, v6a, "x.example")
			if res, _ := k.Allow(ctx, v6b, "x.example"); res.Allowed {
				t.Fatal("an address of the same /64 escaped the count")
			}
			next, err := l.Reconfigure(l.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer next.Close()
			k2, err := next.Keyed("federation", 2, st.short)
			if err != nil {
				t.Fatal(err)
			}
			_ = l.Close()
			if res, _ := k2.Allow(ctx, a, "spam.example"); res.Allowed {
				t.Fatal("the count was lost across Reconfigure")
			}
			st.wait(st.short + 50*time.Millisecond)
			if res, _ := k2.Allow(ctx, a, "spam.example"); !res.Allowed {
				t.Fatal("still refused after the period")
			}
		})
	}
}

func TestKeyedRefusesBadLimits(t *testing.T) {
	l := mustNew(t, baseConfig(), Options{})
	for _, c := range []struct {
		name   string
		limit  int
		period time.Duration
	}{{"", 1, time.Second}, {"x", 0, time.Second}, {"x", configs.MaxRuleLimit + 1, time.Second}, {"x", 1, 0}} {
		if _, err := l.Keyed(c.name, c.limit, c.period); err == nil {
			t.Errorf("Keyed(%q, %d, %v) accepted", c.name, c.limit, c.period)
		}
	}
	_ = l.Close()
	if _, err := l.Keyed("x", 1, time.Second); err == nil {
		t.Error("Keyed on a closed Limiter accepted")
	}
}

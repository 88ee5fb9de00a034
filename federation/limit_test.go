package federation

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
	"github.com/fedigate/fedigate/ratelimit"
)

// TestLimitPerDomainPerAddress: limit counts per sending domain and
// client address, in the memory store and in Redis shared by two
// gateways; over it: 429 with Retry-After, never the backend.
func TestLimitPerDomainPerAddress(t *testing.T) {
	srv := testenv.Redis(t)
	for _, store := range []string{configs.StoreMemory, configs.StoreRedis} {
		t.Run(store, func(t *testing.T) {
			rl := configs.RateLimit{Store: store, OnStoreError: configs.OnErrAllow, StoreTimeout: time.Second, IPv6Prefix: 64}
			if store == configs.StoreRedis {
				rl.RedisURL = "redis://" + srv.Addr + "/0"
			}
			cfg := testConfig(func(f *configs.Federation) { f.Limit, f.Period = 3, time.Hour })
			var edges []*edge
			for range 2 { // two gateways
				lim, err := ratelimit.New(rl, ratelimit.Options{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = lim.Close() })
				edges = append(edges, startEdge(t, cfg, Options{Limiter: lim}))
			}
			send := func(e *edge, domain, client string) *http.Response {
				h := cavageHeader("https://" + domain + "/users/a#main-key")
				h.Set(clientHeader, client)
				return e.post(t, "/inbox", h, "{}")
			}
			// in Redis the gateways count together; in memory each alone
			gw := func(i int) *edge {
				if store == configs.StoreRedis {
					return edges[i%2]
				}
				return edges[0]
			}
			spam := "spam-" + store + ".example"
			for i := range 3 {
				if resp := send(gw(i), spam, "192.0.2.1"); resp.StatusCode != 202 {
					t.Fatalf("delivery %d: status %d", i, resp.StatusCode)
				}
			}
			resp := send(gw(3), spam, "192.0.2.1")
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("4th delivery: status %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if resp := send(edges[0], "real.example", "192.0.2.1"); resp.StatusCode != 202 {
				t.Errorf("another domain from the same address: status %d, want 202", resp.StatusCode)
			}
			if resp := send(edges[0], spam, "192.0.2.2"); resp.StatusCode != 202 {
				t.Errorf("the same domain from another address: status %d, want 202", resp.StatusCode)
			}
		})
	}
}

// TestLimitForgedKeyIDCountsForTheForger: a forger naming a real domain
// in its key id uses up only its own address's count for that domain.
func TestLimitForgedKeyIDCountsForTheForger(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) { f.Limit = 2 }), Options{})
	forge := cavageHeader("https://real.example/users/a#main-key")
	forge.Set(clientHeader, "203.0.113.9")
	for range 5 {
		e.post(t, "/inbox", forge, "{}")
	}
	real := cavageHeader("https://real.example/users/a#main-key")
	real.Set(clientHeader, "198.51.100.7")
	if resp := e.post(t, "/inbox", real, "{}"); resp.StatusCode != 202 {
		t.Errorf("the real server after a forger: status %d, want 202", resp.StatusCode)
	}
}

// TestLimitUnsignedCountedPerAddress: unsigned deliveries count together
// per client address, so dropping the signature does not escape the limit.
func TestLimitUnsignedCountedPerAddress(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) { f.Limit = 2 }), Options{})
	h := http.Header{clientHeader: {"192.0.2.5"}}
	codes := []int{}
	for range 3 {
		codes = append(codes, e.post(t, "/inbox", h, "{}").StatusCode)
	}
	if codes[2] != http.StatusTooManyRequests {
		t.Errorf("unsigned deliveries: %v, want the third 429", codes)
	}
}

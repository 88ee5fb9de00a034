package cache

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// burst sends n concurrent GETs of path and returns how long they took.
func burst(t *testing.T, rg *rig, n int, path string, hdr ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", rg.front.URL+path, nil)
			// each fetching instance signs its own request
			req.Header.Set("Signature", `keyId="https://i`+strconv.Itoa(i)+`.example/actor#main-key",signature="s`+strconv.Itoa(i)+`"`)
			for _, kv := range hdr {
				k, v := splitKV(kv)
				req.Header.Set(k, v)
			}
			resp, err := rg.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

func splitKV(kv string) (string, string) {
	for i := 0; i+1 < len(kv); i++ {
		if kv[i] == ':' && kv[i+1] == ' ' {
			return kv[:i], kv[i+2:]
		}
	}
	return kv, ""
}

// TestCoalescingStampede: 100 concurrent misses of one public status reach
// the backend once; the others are answered from that fetch.
func TestCoalescingStampede(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), func(int, *http.Request) (int, []string, string) {
		time.Sleep(150 * time.Millisecond)
		return 200, []string{"Cache-Control: max-age=180, public", "Vary: Accept, Accept-Language, Cookie"}, `{"type":"Note"}`
	})
	burst(t, rg, 100, "/users/a/statuses/1", "Accept: application/activity+json")
	if n := rg.fetches.Load(); n != 1 {
		t.Fatalf("%d backend fetches, want 1", n)
	}
	counts := map[Result]int{}
	rg.mu.Lock()
	for _, r := range rg.results {
		counts[r]++
	}
	rg.mu.Unlock()
	if counts[Miss] != 1 || counts[Coalesced]+counts[Hit] != 99 {
		t.Fatalf("results %v: want 1 miss, 99 coalesced or hits", counts)
	}
}

// TestCoalescingNotStorableSendsWaitersOn: when the one fetch turns out
// not storable, the waiters go to the backend at once, in parallel (never
// one after another), and later misses of the key do not wait at all.
func TestCoalescingNotStorableSendsWaitersOn(t *testing.T) {
	var inFlight, most atomic.Int64
	rg := newRig(t, defaultCacheConfig(), func(int, *http.Request) (int, []string, string) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(200 * time.Millisecond)
		return 200, []string{"Cache-Control: private, no-store"}, "mine"
	})
	d := burst(t, rg, 20, "/api/v1/timelines/home")
	if n := rg.fetches.Load(); n != 20 {
		t.Fatalf("%d backend fetches, want 20", n)
	}
	if d > 3*time.Second { // one after another would be 20 x 200 ms
		t.Fatalf("20 uncacheable misses took %v: serialised", d)
	}
	if most.Load() < 10 {
		t.Fatalf("at most %d at the backend at once: waiters were not sent on together", most.Load())
	}
	most.Store(0)
	d = burst(t, rg, 20, "/api/v1/timelines/home")
	if most.Load() < 10 || rg.fetches.Load() != 40 {
		t.Fatalf("second burst: %v, %d fetches, at most %d at once: later misses of an uncacheable key must not wait", d, rg.fetches.Load(), most.Load())
	}
}

// TestCoalescingWaitIsBounded: a waiter never waits past Options.Wait
// (backend.response_timeout); then it goes to the backend itself.
func TestCoalescingWaitIsBounded(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), func(n int, _ *http.Request) (int, []string, string) {
		if n == 1 {
			time.Sleep(1500 * time.Millisecond)
			return 200, []string{"Cache-Control: max-age=60"}, "slow"
		}
		return 200, []string{"Cache-Control: max-age=60"}, "fast"
	})
	rg.cache.wait.Store(int64(300 * time.Millisecond))
	leader := make(chan struct{})
	go func() { defer close(leader); rg.do("GET", "/p") }() // the slow first fetch leads
	t.Cleanup(func() { <-leader })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	_, body := rg.do("GET", "/p")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("waiter took %v: waited past the bound", d)
	}
	if body != "fast" {
		t.Fatalf("body %q, want the waiter's own fetch", body)
	}
}

// TestReusedRecorderLeaksNothing: recorders (and their field maps) are
// reused between fetches; one answer's fields must never reach another
// client, and what a stored answer keeps must not change when the map is
// reused.
func TestReusedRecorderLeaksNothing(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), func(n int, r *http.Request) (int, []string, string) {
		switch r.URL.Path {
		case "/secret":
			return 200, []string{"Cache-Control: private", "X-Secret: " + strconv.Itoa(n)}, "secret"
		case "/stored":
			return 200, []string{"Cache-Control: max-age=60, public", "X-Stored: kept"}, "stored"
		}
		return 200, []string{"Cache-Control: no-store"}, "plain"
	})
	rg.do("GET", "/stored")
	for i := 0; i < 50; i++ {
		resp, _ := rg.do("GET", "/secret")
		if resp.Header.Get("X-Secret") == "" {
			t.Fatal("the backend's own field is missing")
		}
		resp, _ = rg.do("GET", "/plain")
		if v := resp.Header.Get("X-Secret"); v != "" {
			t.Fatalf("request %d: a previous answer's field leaked: X-Secret %q", i, v)
		}
	}
	resp, body := rg.do("GET", "/stored")
	if body != "stored" || resp.Header.Get("X-Stored") != "kept" || resp.Header.Get("X-Secret") != "" ||
		!strings.HasPrefix(resp.Header.Get("Cache-Status"), "fedigate; hit") {
		t.Fatalf("stored answer changed: %q %v", body, resp.Header)
	}
}

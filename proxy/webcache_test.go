package proxy

import (
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fedigate/fedigate/cache"
)

// webCacheEdge is an edge with the response cache in Options.WebCache and
// a backend that counts what reaches it.
func webCacheEdge(t *testing.T, guards ...func(http.Handler) http.Handler) (*testEdge, *atomic.Int64, func() map[string]int) {
	t.Helper()
	var fetches atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=180, public")
		w.Header().Set("Vary", "Accept, Accept-Language, Cookie")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`","pad":"`+strings.Repeat("x", 600)+`"}`)
	}))
	t.Cleanup(be.Close)
	cfg := testConfig(t, be.URL, be.URL)
	cfg.Backend.StaticRoot = staticTree(t)
	var mu sync.Mutex
	results := map[string]int{}
	c, err := cache.New(cfg.Cache, cache.Options{OnResult: func(_ *http.Request, res cache.Result) {
		mu.Lock()
		results[res.String()]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	te := startEdge(t, cfg, Options{WebCache: c.Handler, Guards: guards})
	return te, &fetches, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range results {
			out[k] = v
		}
		return out
	}
}

func getWith(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, _ := io.ReadAll(r)
	return resp, string(b)
}

// TestWebCacheOnlyTheWebBackend: the web route is cached over HTTP/1.1 and
// HTTP/2; the streaming route and static files never reach the cache.
func TestWebCacheOnlyTheWebBackend(t *testing.T) {
	te, fetches, results := webCacheEdge(t)
	for _, h2 := range []bool{false, true} {
		getWith(t, te.client(h2), te.base+"/users/a/statuses/1", "Accept: application/activity+json")
	}
	if fetches.Load() != 1 || results()["hit"] != 1 {
		t.Fatalf("web route: %d fetches, results %v: want 1 fetch and a hit", fetches.Load(), results())
	}
	for i := 0; i < 2; i++ {
		getWith(t, te.client(false), te.base+"/api/v1/streaming/health")
	}
	if fetches.Load() != 3 {
		t.Fatalf("streaming: %d fetches, want every request at the backend", fetches.Load())
	}
	resp, _ := getWith(t, te.client(false), te.base+"/assets/app.css")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Status") != "" || fetches.Load() != 3 {
		t.Fatalf("static: status %d, Cache-Status %q, %d fetches", resp.StatusCode, resp.Header.Get("Cache-Status"), fetches.Load())
	}
	if got := results(); got["hit"]+got["miss"] != 2 {
		t.Fatalf("results %v: only the web route may reach the cache", got)
	}
}

// TestWebCacheKeepsGzipApart: the edge's gzip runs behind the cache and
// adds Vary: Accept-Encoding, so a client that takes no gzip never gets the
// compressed copy, nor the other way round.
func TestWebCacheKeepsGzipApart(t *testing.T) {
	te, fetches, _ := webCacheEdge(t)
	c := te.client(false)
	want := `{"path":"/p","pad":"` + strings.Repeat("x", 600) + `"}`
	resp, body := getWith(t, c, te.base+"/p", "Accept-Encoding: gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || body != want {
		t.Fatalf("gzip client: encoding %q body %q", resp.Header.Get("Content-Encoding"), body)
	}
	resp, body = getWith(t, c, te.base+"/p", "Accept-Encoding: identity")
	if resp.Header.Get("Content-Encoding") != "" || body != want {
		t.Fatalf("identity client got encoding %q", resp.Header.Get("Content-Encoding"))
	}
	resp, _ = getWith(t, c, te.base+"/p", "Accept-Encoding: gzip, br")
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("second gzip client: encoding %q, Cache-Status %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("Cache-Status"))
	}
	if fetches.Load() != 2 {
		t.Fatalf("%d fetches, want 2", fetches.Load())
	}
}

// TestWebCacheAfterGuards: a request a guard refuses never reaches the
// cache, and every request passes the guards, hits included (as nginx's
// limit_req counts requests its cache answers).
func TestWebCacheAfterGuards(t *testing.T) {
	var seen atomic.Int64
	guard := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if seen.Add(1) > 3 {
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	te, fetches, results := webCacheEdge(t, guard)
	var codes []int
	for i := 0; i < 5; i++ {
		resp, _ := getWith(t, te.client(false), te.base+"/p")
		codes = append(codes, resp.StatusCode)
	}
	if seen.Load() != 5 || fetches.Load() != 1 || codes[3] != 429 || codes[4] != 429 {
		t.Fatalf("guard saw %d, %d fetches, codes %v", seen.Load(), fetches.Load(), codes)
	}
	if got := results(); got["miss"] != 1 || got["hit"] != 2 {
		t.Fatalf("results %v", got)
	}
}

// BenchmarkHandlerCacheHit runs the whole chain in-process (no TLS) for a
// stored public status: the cost of a hit at the edge.
func BenchmarkHandlerCacheHit(b *testing.B) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=180, public")
		w.Header().Set("Vary", "Accept, Accept-Language, Cookie")
		w.Header().Set("Content-Type", "application/activity+json; charset=utf-8")
		_, _ = io.WriteString(w, `{"type":"Note","content":"`+strings.Repeat("x", 1500)+`"}`)
	}))
	b.Cleanup(be.Close)
	cfg := testConfig(b, be.URL, "")
	c, err := cache.New(cfg.Cache, cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	tc, _ := testTLS(b)
	e, err := New(cfg, Options{TLSConfig: tc, Logger: slog.New(slog.DiscardHandler), WebCache: c.Handler})
	if err != nil {
		b.Fatal(err)
	}
	h := e.Handler()
	req := httptest.NewRequest(http.MethodGet, "https://example.test/users/alice/statuses/1", nil)
	req.Header.Set("Accept", "application/activity+json")
	req.RemoteAddr = "192.0.2.1:50000"
	h.ServeHTTP(httptest.NewRecorder(), req)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 || w.Header().Get("Cache-Status") != "fedigate; hit" {
			b.Fatal(w.Code, w.Header().Get("Cache-Status"))
		}
	}
}

// TestWebCacheHeaderBoundNotStored: a backend answer over the header bound
// is refused (502) and never stored, even with a long max-age.
func TestWebCacheHeaderBoundNotStored(t *testing.T) {
	var fetches atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=600, public")
		w.Header().Set("X-Big", strings.Repeat("b", 80<<10))
		_, _ = io.WriteString(w, "body")
	}))
	t.Cleanup(be.Close)
	cfg := testConfig(t, be.URL, "")
	c, err := cache.New(cfg.Cache, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	te := startEdge(t, cfg, Options{WebCache: c.Handler})
	for i := 1; i <= 2; i++ {
		resp, _ := getWith(t, te.client(false), te.base+"/p")
		if resp.StatusCode != http.StatusBadGateway || fetches.Load() != int64(i) {
			t.Fatalf("request %d: status %d, %d fetches", i, resp.StatusCode, fetches.Load())
		}
	}
}

// A 103 Early Hints reaches the client through the cache too, on both
// backend paths, and the final answer still carries the edge's HSTS once
// (the cache's recorder relays 1xx answers as the paths do without it).
func TestWebCacheRelays103AndKeepsHSTS(t *testing.T) {
	be := policyBackend(t)
	for _, noLean := range []bool{false, true} {
		cfg := testConfig(t, be.URL, "")
		c, err := cache.New(cfg.Cache, cache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		te := startEdge(t, cfg, Options{WebCache: c.Handler, noLean: noLean})
		var hints []string
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				if code == http.StatusEarlyHints {
					hints = append(hints, h.Get("Link"))
				}
				return nil
			},
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, te.base+"/users/a", nil)
		resp, err := te.client(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if len(hints) != 1 || hints[0] != "</packs/app.js>; rel=preload" {
			t.Errorf("noLean=%v: early hints %q, want the backend's one", noLean, hints)
		}
		if v := resp.Header.Values("Strict-Transport-Security"); len(v) != 1 || v[0] != "max-age=63072000; includeSubDomains" {
			t.Errorf("noLean=%v: HSTS %q after the 103, want the edge's alone", noLean, v)
		}
		if resp.Header.Get("Link") != "" {
			t.Errorf("noLean=%v: the 103's Link leaked into the final answer", noLean)
		}
		if !strings.HasPrefix(resp.Header.Get("Cache-Status"), "fedigate; fwd=") {
			t.Errorf("noLean=%v: Cache-Status %q: the cache did not handle it", noLean, resp.Header.Get("Cache-Status"))
		}
	}
}

package cache

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// step is one request of a row and what must come of it.
type step struct {
	advance time.Duration
	method  string // "" = GET
	path    string // "" = /p
	req     []string
	status  int    // 0 = 200
	result  Result // what OnResult was told
	fetches int64  // backend fetches so far
	body    string // "" = not checked
	header  []string
	absent  []string // fields that must not be in the answer
}

type rfcRow struct {
	name   string
	answer answer
	steps  []step
}

func etagged(cc string, extra ...string) answer {
	return func(n int, r *http.Request) (int, []string, string) {
		h := append([]string{"Cache-Control: " + cc, `Etag: "v1"`}, extra...)
		if r.Header.Get("If-None-Match") == `"v1"` {
			return http.StatusNotModified, h, ""
		}
		return 200, h, "body" + strconv.Itoa(n)
	}
}

// TestRFC9111 walks RFC 9111's sections row by row against a real backend
// on loopback: a row is one answer and the requests that follow it.
func TestRFC9111(t *testing.T) {
	lm := time.Date(2026, 2, 19, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat) // 10 days before the clock
	rows := []rfcRow{
		// §3 and §5.2.2: storing
		{"s3/max-age stored", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{result: Miss, fetches: 1, body: "a", header: []string{"Cache-Status: fedigate; fwd=uri-miss; fwd-status=200; stored"}},
			{advance: 59 * time.Second, result: Hit, fetches: 1, body: "a", header: []string{"Cache-Status: fedigate; hit", "Age: 59"}},
			{advance: 2 * time.Second, result: Miss, fetches: 2},
		}},
		{"s5.2.2.10/s-maxage over max-age", fixed(200, "a", "Cache-Control: max-age=1, s-maxage=60"), []step{
			{result: Miss, fetches: 1}, {advance: 30 * time.Second, result: Hit, fetches: 1},
		}},
		{"s5.3/Expires", func(int, *http.Request) (int, []string, string) {
			return 200, []string{"Expires: " + time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC).Format(http.TimeFormat)}, "a"
		}, []step{{result: Miss, fetches: 1}, {advance: 59 * time.Second, result: Hit, fetches: 1}, {advance: 2 * time.Second, result: Miss, fetches: 2}}},
		{"s5.3/invalid Expires is in the past", fixed(200, "a", "Expires: 0"), []step{{result: Miss, fetches: 1}, {result: Miss, fetches: 2}}},
		{"s5.2.2.5/no-store not stored", fixed(200, "a", "Cache-Control: no-store, max-age=60"), []step{
			{result: Miss, fetches: 1, header: []string{"Cache-Status: fedigate; fwd=uri-miss; fwd-status=200; detail=no-store"}}, {result: Miss, fetches: 2}}},
		{"s5.2.2.7/private not stored", fixed(200, "a", "Cache-Control: private, max-age=60"), []step{{result: Miss, fetches: 1}, {result: Miss, fetches: 2}}},
		{"s5.2.2.7/private=field stored without it", fixed(200, "a", `Cache-Control: max-age=60, private="X-User"`, "X-User: alice"), []step{
			{result: Miss, fetches: 1, header: []string{"X-User: alice"}}, {result: Hit, fetches: 1, absent: []string{"X-User"}}}},
		{"s5.2.2.4/no-cache revalidates every time", etagged("no-cache, max-age=60"), []step{
			{result: Miss, fetches: 1, body: "body1"}, {result: Revalidated, fetches: 2, body: "body1"}, {result: Revalidated, fetches: 3, body: "body1"}}},
		{"s5.2.2.4/no-cache=field stored without it", fixed(200, "a", `Cache-Control: max-age=60, no-cache="X-Secret"`, "X-Secret: s"), []step{
			{result: Miss, fetches: 1}, {result: Hit, fetches: 1, absent: []string{"X-Secret"}}}},
		{"s5.2.2.2/must-revalidate refuses max-stale", fixed(200, "a", "Cache-Control: max-age=1, must-revalidate"), []step{
			{result: Miss, fetches: 1}, {advance: 5 * time.Second, req: []string{"Cache-Control: max-stale=60"}, result: Miss, fetches: 2}}},
		{"s5.2.2.8/proxy-revalidate refuses max-stale", fixed(200, "a", "Cache-Control: max-age=1, proxy-revalidate"), []step{
			{result: Miss, fetches: 1}, {advance: 5 * time.Second, req: []string{"Cache-Control: max-stale"}, result: Miss, fetches: 2}}},
		{"s5.2.1.2/max-stale serves stale", fixed(200, "a", "Cache-Control: max-age=1"), []step{
			{result: Miss, fetches: 1}, {advance: 5 * time.Second, req: []string{"Cache-Control: max-stale=60"}, result: Stale, fetches: 1, header: []string{"Age: 5"}},
			{req: []string{"Cache-Control: max-stale=2"}, result: Miss, fetches: 2}}},
		{"s5.2.2.3/must-understand overrides no-store for a known status", fixed(200, "a", "Cache-Control: must-understand, no-store, max-age=60"), []step{
			{result: Miss, fetches: 1}, {result: Hit, fetches: 1}}},
		{"s5.2.2.3/must-understand with an unknown status", fixed(299, "a", "Cache-Control: must-understand, no-store, max-age=60"), []step{
			{status: 299, result: Miss, fetches: 1}, {status: 299, result: Miss, fetches: 2}}},
		{"s4.2.2/heuristic only when public", fixed(200, "a", "Cache-Control: public", "Last-Modified: "+lm), []step{
			{result: Miss, fetches: 1}, {advance: 23 * time.Hour, result: Hit, fetches: 1}, {advance: 2 * time.Hour, result: Miss, fetches: 2}}},
		{"s4.2.2/no heuristic lifetime without public: revalidated", func(n int, r *http.Request) (int, []string, string) {
			if r.Header.Get("If-Modified-Since") == lm {
				return 304, []string{"Last-Modified: " + lm}, ""
			}
			return 200, []string{"Last-Modified: " + lm}, "a"
		}, []step{{result: Miss, fetches: 1}, {result: Revalidated, fetches: 2, body: "a"}}},
		{"s3/404 with max-age stored", fixed(404, "gone", "Cache-Control: max-age=60"), []step{
			{status: 404, result: Miss, fetches: 1}, {status: 404, result: Hit, fetches: 1, body: "gone"}}},
		{"s3/500 not stored", fixed(500, "x", "Cache-Control: max-age=60"), []step{{status: 500, result: Miss, fetches: 1}, {status: 500, result: Miss, fetches: 2}}},
		{"s3/no freshness, no validator: not stored", fixed(200, "a"), []step{{result: Miss, fetches: 1}, {result: Miss, fetches: 2}}},
		{"set-cookie never stored", fixed(200, "a", "Cache-Control: public, max-age=60", "Set-Cookie: s=1"), []step{{result: Miss, fetches: 1}, {result: Miss, fetches: 2}}},
		{"s4.1/Vary star never stored", fixed(200, "a", "Cache-Control: max-age=60", "Vary: *"), []step{{result: Miss, fetches: 1}, {result: Miss, fetches: 2}}},
		{"s5.2.1.5/request no-store: not stored", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{req: []string{"Cache-Control: no-store"}, result: Miss, fetches: 1}, {result: Miss, fetches: 2}, {req: []string{"Cache-Control: no-store"}, result: Hit, fetches: 2}}},
		{"s5.2.1.4/request no-cache revalidates", etagged("max-age=60"), []step{
			{result: Miss, fetches: 1}, {req: []string{"Cache-Control: no-cache"}, result: Revalidated, fetches: 2}, {result: Hit, fetches: 2}}},
		{"s5.4/Pragma no-cache revalidates", etagged("max-age=60"), []step{
			{result: Miss, fetches: 1}, {req: []string{"Pragma: no-cache"}, result: Revalidated, fetches: 2}}},
		{"s5.2.1.1/request max-age", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{result: Miss, fetches: 1}, {advance: 20 * time.Second, req: []string{"Cache-Control: max-age=30"}, result: Hit, fetches: 1},
			{req: []string{"Cache-Control: max-age=10"}, result: Miss, fetches: 2}}},
		{"s5.2.1.3/min-fresh", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{result: Miss, fetches: 1}, {advance: 20 * time.Second, req: []string{"Cache-Control: min-fresh=30"}, result: Hit, fetches: 1},
			{req: []string{"Cache-Control: min-fresh=50"}, result: Miss, fetches: 2}}},
		{"s5.2.1.7/only-if-cached", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{req: []string{"Cache-Control: only-if-cached"}, status: 504, result: Miss, fetches: 0}, {result: Miss, fetches: 1},
			{req: []string{"Cache-Control: only-if-cached"}, result: Hit, fetches: 1}}},
		{"s4.2.3/Age from upstream counts", fixed(200, "a", "Cache-Control: max-age=60", "Age: 50"), []step{
			{result: Miss, fetches: 1}, {advance: 5 * time.Second, result: Hit, fetches: 1, header: []string{"Age: 55"}}, {advance: 6 * time.Second, result: Miss, fetches: 2}}},
		{"s5.1/invalid Age ignored", fixed(200, "a", "Cache-Control: max-age=60", "Age: -5"), []step{
			{result: Miss, fetches: 1}, {advance: 5 * time.Second, result: Hit, fetches: 1, header: []string{"Age: 5"}}}},
		{"malformed Cache-Control passes through unstored", fixed(200, "a", "Cache-Control: max-age=abc"), []step{
			{result: Miss, fetches: 1, header: []string{"Cache-Status: fedigate; fwd=uri-miss; fwd-status=200; detail=malformed"}}, {result: Miss, fetches: 2}}},
		{"s4.2.1/conflicting max-age passes through unstored", fixed(200, "a", "Cache-Control: max-age=10, max-age=20"), []step{{result: Miss, fetches: 1}, {result: Miss, fetches: 2}}},
		{"malformed request Cache-Control bypasses", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{result: Miss, fetches: 1}, {req: []string{`Cache-Control: max-age="`}, result: Bypass, fetches: 2}}},
		// §3.5
		{"s3.5/Authorization not stored without public", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{req: []string{"Authorization: Bearer x"}, result: Miss, fetches: 1}, {result: Miss, fetches: 2}}},
		{"s3.5/Authorization stored with public", fixed(200, "a", "Cache-Control: public, max-age=60", "Vary: Authorization"), []step{
			{req: []string{"Authorization: Bearer x"}, result: Miss, fetches: 1}, {req: []string{"Authorization: Bearer x"}, result: Hit, fetches: 1},
			{req: []string{"Authorization: Bearer y"}, result: Miss, fetches: 2}}},
		{"s3.5/Authorization stored with s-maxage", fixed(200, "a", "Cache-Control: s-maxage=60"), []step{
			{req: []string{"Authorization: Bearer x"}, result: Miss, fetches: 1}, {result: Hit, fetches: 1}}},
		{"s3.5/Authorization stored with must-revalidate", fixed(200, "a", "Cache-Control: max-age=60, must-revalidate"), []step{
			{req: []string{"Authorization: Bearer x"}, result: Miss, fetches: 1}, {result: Hit, fetches: 1}}},
		// §4.1
		{"s4.1/Vary keeps variants apart", func(n int, r *http.Request) (int, []string, string) {
			return 200, []string{"Cache-Control: max-age=60", "Vary: Accept-Language"}, "lang=" + r.Header.Get("Accept-Language")
		}, []step{
			{req: []string{"Accept-Language: de"}, result: Miss, fetches: 1, body: "lang=de"},
			{req: []string{"Accept-Language: fr"}, result: Miss, fetches: 2, body: "lang=fr"},
			{req: []string{"Accept-Language: de"}, result: Hit, fetches: 2, body: "lang=de"},
			{req: []string{"Accept-Language:  fr "}, result: Hit, fetches: 2, body: "lang=fr"},
			{result: Miss, fetches: 3, body: "lang="}}},
		// §4.3
		{"s4.3.4/304 updates the stored fields", func(n int, r *http.Request) (int, []string, string) {
			if r.Header.Get("If-None-Match") == `"v1"` {
				return 304, []string{"Cache-Control: max-age=60", `Etag: "v1"`, "X-V: 2"}, ""
			}
			return 200, []string{"Cache-Control: max-age=1", `Etag: "v1"`, "X-V: 1"}, "a"
		}, []step{
			{result: Miss, fetches: 1, header: []string{"X-V: 1"}},
			{advance: 5 * time.Second, result: Revalidated, fetches: 2, body: "a", header: []string{"X-V: 2", "Cache-Status: fedigate; fwd=stale; fwd-status=304"}},
			{advance: 30 * time.Second, result: Hit, fetches: 2, body: "a", header: []string{"X-V: 2"}}}},
		{"s4.3.2/client If-None-Match answered 304 from the store", fixed(200, "a", "Cache-Control: max-age=60", `Etag: "v1"`), []step{
			{result: Miss, fetches: 1}, {req: []string{`If-None-Match: "v1"`}, status: 304, result: Hit, fetches: 1},
			{req: []string{`If-None-Match: "v2"`}, status: 200, result: Hit, fetches: 1, body: "a"}}},
		{"s4.3.1/a revalidation carries the stored validators", func(n int, r *http.Request) (int, []string, string) {
			if r.Header.Get("If-None-Match") == `"v1"` && r.Header.Get("If-Modified-Since") == lm {
				return 304, []string{`Etag: "v1"`}, ""
			}
			return 200, []string{"Cache-Control: max-age=1", `Etag: "v1"`, "Last-Modified: " + lm}, "a"
		}, []step{{result: Miss, fetches: 1}, {advance: 2 * time.Second, req: []string{`If-None-Match: "zzz"`, "Range: bytes=0-0"}, status: 206, result: Revalidated, fetches: 2, body: "a"}}},
		// §4.4
		{"s4.4/unsafe method invalidates", fixed(200, "a", "Cache-Control: max-age=60", "Location: /q", "Content-Location: /r"), []step{
			{result: Miss, fetches: 1}, {path: "/q", result: Miss, fetches: 2}, {path: "/r", result: Miss, fetches: 3},
			{path: "/q", result: Hit, fetches: 3}, {path: "/r", result: Hit, fetches: 3},
			{method: "POST", result: Bypass, fetches: 4, header: []string{"Cache-Status: fedigate; fwd=method"}},
			{result: Miss, fetches: 5}, {path: "/q", result: Miss, fetches: 6}, {path: "/r", result: Miss, fetches: 7}}},
		{"s4.4/an error does not invalidate", func(n int, r *http.Request) (int, []string, string) {
			if r.Method == "DELETE" {
				return 500, nil, "no"
			}
			return 200, []string{"Cache-Control: max-age=60"}, "a"
		}, []step{{result: Miss, fetches: 1}, {method: "DELETE", status: 500, result: Bypass, fetches: 2}, {result: Hit, fetches: 2}}},
		{"s4.4/Location on another host is not invalidated", func(n int, r *http.Request) (int, []string, string) {
			return 200, []string{"Cache-Control: max-age=60", "Location: https://other.example/p"}, "a"
		}, []step{{result: Miss, fetches: 1}, {method: "PUT", path: "/x", result: Bypass, fetches: 2}, {result: Hit, fetches: 2}}},
		// HEAD and ranges
		{"s4/HEAD from a stored GET", fixed(200, "abcdef", "Cache-Control: max-age=60"), []step{
			{result: Miss, fetches: 1}, {method: "HEAD", result: Hit, fetches: 1, body: "", header: []string{"Content-Length: 6"}}}},
		{"s3.4/Range answered from the stored whole", fixed(200, "0123456789", "Cache-Control: max-age=60", `Etag: "r1"`), []step{
			{result: Miss, fetches: 1},
			{req: []string{"Range: bytes=2-4"}, status: 206, result: Hit, fetches: 1, body: "234", header: []string{"Content-Range: bytes 2-4/10"}},
			{req: []string{"Range: bytes=-3", `If-Range: "r1"`}, status: 206, result: Hit, fetches: 1, body: "789"},
			{req: []string{"Range: bytes=0-1", `If-Range: "other"`}, status: 200, result: Hit, fetches: 1, body: "0123456789"},
			{req: []string{"Range: bytes=50-60"}, status: 416, result: Hit, fetches: 1}}},
		{"a Range miss is not stored as a whole", func(n int, r *http.Request) (int, []string, string) {
			if r.Header.Get("Range") != "" {
				return 206, []string{"Cache-Control: max-age=60", "Content-Range: bytes 0-1/4"}, "ab"
			}
			return 200, []string{"Cache-Control: max-age=60"}, "abcd"
		}, []step{{req: []string{"Range: bytes=0-1"}, status: 206, result: Miss, fetches: 1}, {result: Miss, fetches: 2, body: "abcd"}}},
		// RFC 5861 and stale_if_error
		{"rfc5861/stale-while-revalidate", func(n int, r *http.Request) (int, []string, string) {
			return 200, []string{"Cache-Control: max-age=1, stale-while-revalidate=30"}, "v" + strconv.Itoa(n)
		}, []step{
			{result: Miss, fetches: 1, body: "v1"},
			{advance: 5 * time.Second, result: Stale, body: "v1", header: []string{"Cache-Status: fedigate; hit; detail=stale-while-revalidate"}},
			{advance: 0, result: Hit, fetches: 2, body: "v2"}}},
		{"rfc5861/stale-while-revalidate window ends", fixed(200, "a", "Cache-Control: max-age=1, stale-while-revalidate=3"), []step{
			{result: Miss, fetches: 1}, {advance: 10 * time.Second, result: Miss, fetches: 2}}},
		// host and path
		{"key has the Host", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{req: []string{"Host: a.example"}, result: Miss, fetches: 1}, {req: []string{"Host: b.example"}, result: Miss, fetches: 2},
			{req: []string{"Host: A.example:443"}, result: Hit, fetches: 2}}},
		{"key has the query", fixed(200, "a", "Cache-Control: max-age=60"), []step{
			{path: "/p?a=1", result: Miss, fetches: 1}, {path: "/p?a=2", result: Miss, fetches: 2}, {path: "/p?a=1", result: Hit, fetches: 2}}},
		{"cache deception: a private answer at a .css path is not stored", fixed(200, "secret", "Cache-Control: private, no-store"), []step{
			{path: "/settings/profile/x.css", req: []string{"Cookie: _session=alice"}, result: Miss, fetches: 1},
			{path: "/settings/profile/x.css", result: Miss, fetches: 2}}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			rg := newRig(t, defaultCacheConfig(), row.answer)
			for i, s := range row.steps {
				rg.clock.Advance(s.advance)
				method, path := s.method, s.path
				if method == "" {
					method = "GET"
				}
				if path == "" {
					path = "/p"
				}
				resp, body := rg.do(method, path, s.req...)
				want := s.status
				if want == 0 {
					want = 200
				}
				if resp.StatusCode != want {
					t.Errorf("step %d: status %d, want %d", i, resp.StatusCode, want)
				}
				if got := rg.lastResult(); got != s.result {
					t.Errorf("step %d: result %v, want %v (Cache-Status %q)", i, got, s.result, resp.Header.Get("Cache-Status"))
				}
				if s.result == Stale && strings.Contains(resp.Header.Get("Cache-Status"), "stale-while-revalidate") {
					waitFetches(t, rg, 2)
				} else if got := rg.fetches.Load(); got != s.fetches {
					t.Errorf("step %d: %d backend fetches, want %d", i, got, s.fetches)
				}
				if s.body != "" || method == "HEAD" {
					if body != s.body {
						t.Errorf("step %d: body %q, want %q", i, body, s.body)
					}
				}
				for _, kv := range s.header {
					k, v, _ := strings.Cut(kv, ": ")
					if got := strings.Join(resp.Header.Values(k), ", "); got != v {
						t.Errorf("step %d: %s = %q, want %q", i, k, got, v)
					}
				}
				for _, k := range s.absent {
					if _, ok := resp.Header[k]; ok {
						t.Errorf("step %d: %s sent, must not be", i, k)
					}
				}
			}
		})
	}
}

func waitFetches(t *testing.T, rg *rig, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for rg.fetches.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d backend fetches, want %d", rg.fetches.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// the refresh stores after its fetch: wait until nothing is in flight
	for {
		rg.cache.mu.Lock()
		n := len(rg.cache.flights)
		rg.cache.mu.Unlock()
		if n == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// invalidationProbe is the client's ResponseWriter for an unsafe request:
// when the answer's header goes out, it asks the cache for the stored GET.
type invalidationProbe struct {
	*httptest.ResponseRecorder
	probe func()
}

func (p *invalidationProbe) WriteHeader(code int) {
	p.probe()
	p.ResponseRecorder.WriteHeader(code)
}

// TestInvalidatedBeforeTheAnswerGoesOut: a client that POSTs and at once
// GETs what it changed must not get the old copy, so the stored answer is
// gone before the POST's answer reaches the client, not after (§4.4).
func TestInvalidatedBeforeTheAnswerGoesOut(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), fixed(200, "a", "Cache-Control: max-age=60"))
	rg.do("GET", "/p")
	if rg.do("GET", "/p"); rg.lastResult() != Hit {
		t.Fatalf("setup: %v, want a hit", rg.lastResult())
	}
	h := rg.front.Config.Handler
	var stored bool
	w := &invalidationProbe{ResponseRecorder: httptest.NewRecorder(), probe: func() {
		req := httptest.NewRequest("GET", rg.front.URL+"/p", nil)
		bp := rg.cache.bufs.Get().(*[]byte)
		lk, _ := rg.cache.find(req, bp)
		rg.cache.bufs.Put(bp)
		stored = lk.obj != nil
	}}
	req := httptest.NewRequest("POST", rg.front.URL+"/p", strings.NewReader("x"))
	req.TLS = &tls.ConnectionState{} // as the front serves it: an https key
	h.ServeHTTP(w, req)
	if w.Code != 200 || stored {
		t.Fatalf("POST answered %d; the old copy still stored when the answer went out: %v", w.Code, stored)
	}
}

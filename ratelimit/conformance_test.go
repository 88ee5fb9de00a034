package ratelimit

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Every store passes the same table.
func TestConformance(t *testing.T) {
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			t.Run("ExactCount", func(t *testing.T) { testExactCount(t, s) })
			t.Run("WindowEdge", func(t *testing.T) { testWindowEdge(t, s) })
			t.Run("IPv6GroupedByPrefix", func(t *testing.T) { testIPv6Grouping(t, s) })
			t.Run("AttackIPv4MappedCountsAsIPv4", func(t *testing.T) { testMapped(t, s) })
			t.Run("Exempt", func(t *testing.T) { testExempt(t, s) })
			t.Run("Unauthenticated", func(t *testing.T) { testUnauthenticated(t, s) })
			t.Run("MethodAndPath", func(t *testing.T) { testMethodAndPath(t, s) })
			t.Run("TooManyResponse", func(t *testing.T) { testTooManyResponse(t, s) })
			t.Run("SeveralRulesAllOrNothing", func(t *testing.T) { testSeveralRules(t, s) })
		})
	}
}

func testExactCount(t *testing.T, s store) {
	l := s.limiter(t, baseConfig(newRule("r", 5, time.Hour, "/x")), Options{})
	for i := 1; i <= 5; i++ {
		res := allow(t, l, "r", "192.0.2.1")
		if !res.Allowed || res.Remaining != 5-i || res.Limit != 5 {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	for i := 0; i < 3; i++ {
		res := allow(t, l, "r", "192.0.2.1")
		if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 || res.RetryAfter > time.Hour {
			t.Fatalf("request over the limit: %+v", res)
		}
	}
	if res := allow(t, l, "r", "192.0.2.2"); !res.Allowed || res.Remaining != 4 {
		t.Fatalf("another client: %+v", res)
	}
}

// The (limit+1)th request inside the window is refused; a request is
// admitted again exactly when the oldest leaves the window, and the window
// slides: the second-oldest still counts.
func testWindowEdge(t *testing.T, s store) {
	p := s.short
	l := s.limiter(t, baseConfig(newRule("r", 2, p, "/x")), Options{})
	allow(t, l, "r", "192.0.2.1")
	s.wait(p / 2)
	allow(t, l, "r", "192.0.2.1")
	res := allow(t, l, "r", "192.0.2.1")
	if res.Allowed {
		t.Fatalf("third inside the window admitted: %+v", res)
	}
	if res.RetryAfter > p/2 || res.RetryAfter < p/2-p/5 {
		t.Fatalf("RetryAfter %v, want about %v", res.RetryAfter, p/2)
	}
	if s.exact {
		s.wait(p/2 - time.Nanosecond)
		if res := allow(t, l, "r", "192.0.2.1"); res.Allowed || res.RetryAfter != time.Nanosecond {
			t.Fatalf("one nanosecond before the oldest leaves: %+v", res)
		}
		s.wait(time.Nanosecond)
	} else {
		s.wait(res.RetryAfter + 20*time.Millisecond)
	}
	if res := allow(t, l, "r", "192.0.2.1"); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("after the oldest left: %+v", res)
	}
	if res := allow(t, l, "r", "192.0.2.1"); res.Allowed {
		t.Fatalf("the second request still counts: %+v", res)
	}
}

func testIPv6Grouping(t *testing.T, s store) {
	l := s.limiter(t, baseConfig(newRule("r", 2, time.Hour, "/x")), Options{})
	allow(t, l, "r", "2001:db8:1:2::1")
	allow(t, l, "r", "2001:db8:1:2:ffff:ffff:ffff:ffff")
	if res := allow(t, l, "r", "2001:db8:1:2:abcd::9"); res.Allowed {
		t.Fatalf("third address of one /64 admitted: %+v", res)
	}
	if res := allow(t, l, "r", "2001:db8:1:3::1"); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("another /64 shares the count: %+v", res)
	}
}

func testMapped(t *testing.T, s store) {
	l := s.limiter(t, baseConfig(newRule("r", 2, time.Hour, "/x")), Options{})
	allow(t, l, "r", "198.51.100.7")
	allow(t, l, "r", "::ffff:198.51.100.7")
	if res := allow(t, l, "r", "198.51.100.7"); res.Allowed {
		t.Fatalf("IPv4-mapped form counted apart: %+v", res)
	}
}

func testExempt(t *testing.T, s store) {
	cfg := baseConfig(newRule("r", 1, time.Hour, "/x"))
	cfg.Exempt = mustPrefixes("10.0.0.0/8")
	cfg.Rules[0].Exempt = mustPrefixes("2001:db8:ee::/48")
	l := s.limiter(t, cfg, Options{})
	for _, c := range []string{"10.1.2.3", "::ffff:10.1.2.3", "2001:db8:ee:1::1"} {
		for i := 0; i < 3; i++ {
			if w, ran := request(l.Middleware, "GET", "/x", c); !ran || w.Header().Get("X-RateLimit-Limit") != "" {
				t.Fatalf("exempt %s refused or counted: %d %v", c, w.Code, w.Header())
			}
			if res := allow(t, l, "r", c); !res.Allowed {
				t.Fatalf("Allow: exempt %s refused", c)
			}
		}
	}
	request(l.Middleware, "GET", "/x", "11.0.0.1")
	if _, ran := request(l.Middleware, "GET", "/x", "11.0.0.1"); ran {
		t.Fatal("a client outside the exemptions was not limited")
	}
}

func testUnauthenticated(t *testing.T, s store) {
	r := newRule("api", 2, time.Hour, "/api/*")
	r.Unauthenticated = true
	l := s.limiter(t, baseConfig(r), Options{})
	creds := [][]string{
		{"Authorization", "Bearer abc"},
		{"Cookie", "_session_id=abc"},
		{"Cookie", "theme=dark; _mastodon_session=xyz"},
		{"Cookie", "__Host-pleroma_key=k"},
		{"Cookie", "pleroma_key=k"},
	}
	for _, h := range creds {
		for i := 0; i < 4; i++ {
			if w, ran := request(l.Middleware, "GET", "/api/v1/timelines/home", "192.0.2.9", h...); !ran || w.Header().Get("X-RateLimit-Remaining") != "" {
				t.Fatalf("authenticated by %q: counted or refused", h)
			}
		}
	}
	notCreds := [][]string{nil, {"Cookie", "theme=dark"}, {"Cookie", "_session_id="}, {"Authorization", " "}, {"Cookie", "x_session_id=1"}}
	for i, h := range notCreds[:2] {
		if _, ran := request(l.Middleware, "GET", "/api/v1/timelines/public", "192.0.2.9", h...); !ran {
			t.Fatalf("unauthenticated request %d refused early", i)
		}
	}
	for _, h := range notCreds {
		if _, ran := request(l.Middleware, "GET", "/api/v1/timelines/public", "192.0.2.9", h...); ran {
			t.Fatalf("AttackEmptyCredentials %q: not counted as unauthenticated", h)
		}
	}
}

func testMethodAndPath(t *testing.T, s store) {
	signUp := newRule("sign-up", 1, time.Hour, "/auth", "/auth.*")
	signUp.Methods = []string{"POST"}
	change := newRule("change", 1, time.Hour, "/auth")
	change.Methods = []string{"PUT"}
	get := newRule("get", 1, time.Hour, "/feed")
	get.Methods = []string{"GET"}
	media := newRule("media", 1, time.Hour, "/media_proxy*")
	l := s.limiter(t, baseConfig(signUp, change, get, media), Options{})
	cases := []struct {
		name, method, path string
		header             []string
		counted            bool
	}{
		{"exact", "POST", "/auth", nil, true},
		{"other method", "GET", "/auth", nil, false},
		{"not a prefix", "POST", "/authx", nil, false},
		{"sub path", "POST", "/auth/sign_in", nil, false},
		{"dot prefix", "POST", "/auth.json", nil, true},
		{"AttackTrailingSlash", "POST", "/auth/", nil, true},
		{"AttackDoubleSlash", "POST", "//auth", nil, true},
		{"AttackUpperCase", "POST", "/AUTH", nil, true},
		{"AttackDotSegments", "POST", "/x/../auth", nil, true},
		{"AttackPercentEncoded", "POST", "/%61uth", nil, true},
		{"AttackMethodOverride", "POST", "/auth", []string{"X-HTTP-Method-Override", "PUT"}, true},
		{"HEAD is GET", "HEAD", "/feed", nil, true},
		{"prefix", "GET", "/media_proxy/1/original", nil, true},
		{"prefix itself", "DELETE", "/media_proxy", nil, true},
		{"before the prefix", "GET", "/media_prox", nil, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := "203.0.113." + strconv.Itoa(i+1)
			w, ran := request(l.Middleware, c.method, c.path, client, c.header...)
			if !ran || (w.Header().Get("X-RateLimit-Limit") != "") != c.counted {
				t.Fatalf("first: ran=%v headers=%v, want counted=%v", ran, w.Header(), c.counted)
			}
			if _, ran := request(l.Middleware, c.method, c.path, client, c.header...); ran == c.counted {
				t.Fatalf("second: ran=%v, want limited=%v", ran, c.counted)
			}
		})
	}
}

func testTooManyResponse(t *testing.T, s store) {
	buf := &logBuffer{}
	l := s.limiter(t, baseConfig(newRule("sign-up", 1, 5*time.Minute, "/auth")), Options{Logger: buf.Logger()})
	w, ran := request(l.Middleware, "POST", "/auth", "192.0.2.50")
	if !ran || w.Header().Get("X-RateLimit-Limit") != "1" || w.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("admitted response headers: %v", w.Header())
	}
	before := time.Now()
	w, ran = request(l.Middleware, "POST", "/auth", "192.0.2.50")
	if ran || w.Code != http.StatusTooManyRequests {
		t.Fatalf("ran=%v code=%d", ran, w.Code)
	}
	h := w.Header()
	if h.Get("Content-Type") != "application/json" || h.Get("X-RateLimit-Limit") != "1" || h.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("headers %v", h)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 299 || ra > 300 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
	reset, err := time.Parse(time.RFC3339Nano, h.Get("X-RateLimit-Reset"))
	if err != nil || reset.Location() != time.UTC {
		t.Fatalf("X-RateLimit-Reset %q: %v", h.Get("X-RateLimit-Reset"), err)
	}
	if s.exact {
		if !reset.Equal(l.now().Add(5 * time.Minute)) {
			t.Fatalf("reset %v, want %v", reset, l.now().Add(5*time.Minute))
		}
	} else if d := reset.Sub(before); d < 4*time.Minute || d > 6*time.Minute {
		t.Fatalf("reset %v is %v away", reset, d)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body) != 1 || body["error"] != "Too many requests" {
		t.Fatalf("body %q", w.Body.String())
	}
	if n := buf.Count(`msg="rate limited" rule=sign-up client=192.0.2.50 limit=1 period=5m0s retry_after=`); n != 1 {
		t.Fatalf("want one canonical refusal line, got %d:\n%s", n, buf)
	}
	if buf.Count("level=") != 1 {
		t.Fatalf("admitted requests logged:\n%s", buf)
	}
}

// A request matching two rules is admitted only when both have room, and a
// refused request is counted by neither.
func testSeveralRules(t *testing.T, s store) {
	narrow := newRule("narrow", 2, time.Hour, "/api/v1/accounts")
	wide := newRule("wide", 3, time.Hour, "/api/*")
	l := s.limiter(t, baseConfig(narrow, wide), Options{})
	c := "192.0.2.77"
	w, _ := request(l.Middleware, "POST", "/api/v1/accounts", c)
	if w.Header().Get("X-RateLimit-Limit") != "2" || w.Header().Get("X-RateLimit-Remaining") != "1" {
		t.Fatalf("headers are not the tightest rule's: %v", w.Header())
	}
	request(l.Middleware, "POST", "/api/v1/accounts", c)
	if w, ran := request(l.Middleware, "POST", "/api/v1/accounts", c); ran || w.Code != 429 || w.Header().Get("X-RateLimit-Limit") != "2" {
		t.Fatalf("third sign-up: ran=%v %v", ran, w.Header())
	}
	if w, ran := request(l.Middleware, "GET", "/api/v1/instance", c); !ran || w.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("the refused request was counted by the wide rule: ran=%v %v", ran, w.Header())
	}
	if _, ran := request(l.Middleware, "GET", "/api/v1/instance", c); ran {
		t.Fatal("wide rule over its limit admitted")
	}
}

package ratelimit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/configs"
)

// TestSignedInCredentials: what unauthenticated rules take for a signed-in
// client, row by row: Doorkeeper's three places for a token (Bearer
// header, access_token and bearer_token parameters), the session cookies,
// and Sec-WebSocket-Protocol on the streaming route only.
func TestSignedInCredentials(t *testing.T) {
	streaming := func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/v1/streaming") }
	l := &Limiter{opts: Options{Streaming: streaming}}
	form := "application/x-www-form-urlencoded"
	rows := []struct {
		name, method, target, ctype, body string
		hdr                               [][2]string
		want                              bool
	}{
		{name: "nothing", method: "GET", target: "/api/v1/timelines/public"},
		{name: "bearer header", method: "GET", target: "/api/v1/timelines/home", hdr: [][2]string{{"Authorization", "Bearer abc"}}, want: true},
		{name: "blank authorization", method: "GET", target: "/api/v1/x", hdr: [][2]string{{"Authorization", "  "}}},
		{name: "access_token query", method: "GET", target: "/api/v1/x?access_token=abc", want: true},
		{name: "bearer_token query", method: "GET", target: "/api/v1/x?a=1&bearer_token=abc", want: true},
		{name: "escaped name", method: "GET", target: "/api/v1/x?access%5Ftoken=abc", want: true},
		{name: "after a semicolon (Rack 2)", method: "GET", target: "/api/v1/x?a=1;access_token=abc", want: true},
		{name: "empty token", method: "GET", target: "/api/v1/x?access_token="},
		{name: "bare name", method: "GET", target: "/api/v1/x?access_token"},
		{name: "other name", method: "GET", target: "/api/v1/x?my_access_token=abc"},
		{name: "form token", method: "POST", target: "/api/v1/statuses", ctype: form, body: "status=hi&access_token=abc", want: true},
		{name: "form without a type (Rack reads it)", method: "POST", target: "/api/v1/statuses", body: "access_token=abc", want: true},
		{name: "json body is not a form", method: "POST", target: "/api/v1/statuses", ctype: "application/json", body: `{"access_token":"abc"}`},
		{name: "session cookie", method: "GET", target: "/api/v1/x", hdr: [][2]string{{"Cookie", "a=1; _mastodon_session=xyz"}}, want: true},
		{name: "websocket protocol on the streaming route", method: "GET", target: "/api/v1/streaming?stream=user", hdr: [][2]string{{"Sec-WebSocket-Protocol", "abc"}}, want: true},
		{name: "AttackWebsocketProtocolOffTheStreamingRoute", method: "GET", target: "/api/v1/timelines/home", hdr: [][2]string{{"Sec-WebSocket-Protocol", "abc"}}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := httptest.NewRequest(row.method, "http://example.test"+row.target, strings.NewReader(row.body))
			if row.body == "" {
				r.Body = http.NoBody
			}
			if row.ctype != "" {
				r.Header.Set("Content-Type", row.ctype)
			}
			for _, h := range row.hdr {
				r.Header.Add(h[0], h[1])
			}
			if got := l.signedIn(r); got != row.want {
				t.Fatalf("signedIn = %v, want %v", got, row.want)
			}
			if b, _ := io.ReadAll(r.Body); string(b) != row.body {
				t.Fatalf("the backend would read %q, want %q", b, row.body)
			}
		})
	}
}

// TestAttackNATStreamingReconnectsNeverLimited: a campus behind one NAT
// reconnects its streaming websockets more than 300 times in 5 minutes;
// Mastodon's streaming server is not Rails, so the mastodon preset never
// counts it, with or without a token; REST calls with a token in any of
// its places are not counted either, and those without still are.
func TestAttackNATStreamingReconnectsNeverLimited(t *testing.T) {
	def, err := configs.Default(configs.PresetMastodon)
	if err != nil {
		t.Fatal(err)
	}
	l := mustNew(t, def.RateLimit, Options{})
	for i := range 320 {
		for _, target := range []string{"/api/v1/streaming", "/api/v1/streaming/user", "/api/v1/streaming?stream=public", "/API/v1/Streaming/"} {
			if w, _ := request(l.Middleware, "GET", target, "198.51.100.7"); w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Limit") != "" {
				t.Fatalf("reconnect %d to %s: %d, limit %q", i, target, w.Code, w.Header().Get("X-RateLimit-Limit"))
			}
		}
		if w, _ := request(l.Middleware, "GET", "/api/v1/timelines/home?access_token=abc", "198.51.100.7"); w.Code != http.StatusOK {
			t.Fatalf("REST call %d with ?access_token: %d", i, w.Code)
		}
	}
	for i := range 300 {
		if w, _ := request(l.Middleware, "GET", "/api/v1/timelines/public", "198.51.100.7"); w.Code != http.StatusOK {
			t.Fatalf("unauthenticated call %d: %d", i, w.Code)
		}
	}
	if w, _ := request(l.Middleware, "GET", "/api/v1/timelines/public", "198.51.100.7"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("301st unauthenticated call: %d, want 429", w.Code)
	}
}

func TestRuleExceptPaths(t *testing.T) {
	r, err := compileRule(configs.Rule{Name: "api", Paths: []string{"/api/*"}, Except: []string{"/api/v1/streaming*", "/api/v1/instance"}, Limit: 1, Period: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/api/v1/timelines/home": true, "/api/v1/streaming": false, "/api/v1/streaming/user": false,
		"/api/v1/instance": false, "/api/v1/instance/peers": true, "/auth": false,
	} {
		if got := r.matchPath(p); got != want {
			t.Errorf("%s: matched %v, want %v", p, got, want)
		}
	}
	if _, err := compileRule(configs.Rule{Name: "bad", Paths: []string{"/api/*"}, Except: []string{"api/x"}, Limit: 1, Period: 1e9}); err == nil {
		t.Fatal("an except path without / accepted")
	}
}

// BenchmarkSignedIn: an anonymous API request with a query, the case an
// unauthenticated rule checks most.
func BenchmarkSignedIn(b *testing.B) {
	l := &Limiter{opts: Options{Streaming: func(*http.Request) bool { return false }}}
	r := httptest.NewRequest("GET", "http://example.test/api/v1/timelines/public?local=true&limit=20", nil)
	r.Header.Set("Cookie", "a=1; b=2")
	b.ReportAllocs()
	for b.Loop() {
		if l.signedIn(r) {
			b.Fatal("signed in")
		}
	}
}

package signupgate

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

func benchGuard(b *testing.B) *Guard {
	b.Helper()
	cfg := configs.Signup{Gate: configs.GatePoW, PowDifficulty: 18, PassTTL: time.Hour, API: configs.APIChallenge}
	routes := configs.Routes{SignupPages: []string{"/auth/sign_up"}, SignupPosts: []string{"/auth"}, APISignup: "/api/v1/accounts"}
	g, err := New(gateConfig(cfg, routes, b.TempDir()), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkChallengeIssue: a fresh signed challenge (random id, HMAC).
func BenchmarkChallengeIssue(b *testing.B) {
	g := benchGuard(b)
	client := mustBenchAddr()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		tok, err := newToken(kindChallenge, 18, client, now.Add(challengeTTL))
		if err != nil {
			b.Fatal(err)
		}
		_ = tok.sign(g.key)
	}
}

// BenchmarkPassVerify: reading and checking the pass cookie of a request.
func BenchmarkPassVerify(b *testing.B) {
	g := benchGuard(b)
	r := httptest.NewRequest(http.MethodPost, "/auth", nil)
	r.RemoteAddr = "[2001:db8::7]:4000"
	tok, err := newToken(kindPass, 0, g.clientAddr(r), time.Now().Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	r.AddCookie(&http.Cookie{Name: PassCookie, Value: tok.sign(g.key)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.validPass(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChallengePage: the whole challenge page response.
func BenchmarkChallengePage(b *testing.B) {
	h := benchGuard(b).Middleware(http.NotFoundHandler())
	r := httptest.NewRequest(http.MethodGet, Prefix+"challenge?return=/auth/sign_up", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
}

func mustBenchAddr() netip.Addr { return netip.MustParseAddr("2001:db8::7") }

// BenchmarkMiddlewarePassThrough: what the gate costs every request that
// is not a sign-up (target: well under a microsecond, no allocations).
func BenchmarkMiddlewarePassThrough(b *testing.B) {
	h := benchGuard(b).Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, p := range []string{"/api/v1/timelines/public", "/users/Alice/statuses/1.json", "//API/v1/instance/"} {
		b.Run(p, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "https://social.test"+p, nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(nil, r)
			}
		})
	}
}

package signupgate

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

func testConfig() configs.Signup {
	return configs.Signup{Gate: configs.GatePoW, PowDifficulty: 8, PassTTL: time.Hour, API: configs.APIChallenge,
		VerifyTimeout: time.Second}
}

func mastodonRoutes() configs.Routes {
	return configs.Routes{SignupPages: []string{"/auth/sign_up"}, SignupPosts: []string{"/auth"}, APISignup: "/api/v1/accounts"}
}

type testGate struct {
	g       *Guard
	h       http.Handler
	backend http.Handler
	clk     *testenv.Clock
	seen    atomic.Int32 // sign-up POSTs the backend saw
	status  atomic.Int32 // status the backend answers sign-ups with
	lastCk  atomic.Value // Cookie header the backend saw
}

func newTestGate(t testing.TB, cfg configs.Signup, keyDir string, rdb redis.UniversalClient) *testGate {
	t.Helper()
	return newTestGateOf(t, gateConfig(cfg, mastodonRoutes(), keyDir), rdb)
}

// newTestGateOf is newTestGate for a whole config (its store included).
func newTestGateOf(t testing.TB, cfg *configs.Config, rdb redis.UniversalClient) *testGate {
	t.Helper()
	tg := &testGate{clk: testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	tg.status.Store(http.StatusFound)
	g, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: tg.clk.Now, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	tg.g = g
	t.Cleanup(func() { tg.g.Close() })
	tg.backend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			tg.seen.Add(1)
			tg.lastCk.Store(r.Header.Get("Cookie"))
			w.Header().Set("Location", "/")
			w.WriteHeader(int(tg.status.Load()))
			return
		}
		_, _ = io.WriteString(w, "backend "+r.URL.Path)
	})
	tg.h = g.Middleware(tg.backend)
	return tg
}

// reconfigure applies cfg as a reload does: Reconfigure, swap, Close the
// old Guard.
func (tg *testGate) reconfigure(t testing.TB, cfg *configs.Config) {
	t.Helper()
	next, err := tg.g.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := tg.g
	tg.g, tg.h = next, next.Middleware(tg.backend)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
}

// do sends one request from client (an IP address) with an optional pass.
func (tg *testGate) do(method, target, client, pass string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if strings.Contains(client, ":") {
		r.RemoteAddr = "[" + client + "]:4000"
	} else {
		r.RemoteAddr = client + ":4000"
	}
	if pass != "" {
		r.AddCookie(&http.Cookie{Name: PassCookie, Value: pass})
	}
	w := httptest.NewRecorder()
	tg.h.ServeHTTP(w, r)
	return w
}

// solve finds a nonce for a challenge token the way the browser does.
func solve(tok string, bits int) string {
	for n := 0; ; n++ {
		s := strconv.Itoa(n)
		if leadingZeroBits(tok, s) >= bits {
			return s
		}
	}
}

var tokenRe = `name="token" value="`

// challengeFor fetches a challenge page for client and returns its token.
func (tg *testGate) challengeFor(t testing.TB, client string) string {
	t.Helper()
	w := tg.do("GET", Prefix+"challenge?return=/auth/sign_up", client, "", nil)
	body := w.Body.String()
	i := strings.Index(body, tokenRe)
	if w.Code != 200 || i < 0 {
		t.Fatalf("challenge page: %d %q", w.Code, body)
	}
	rest := body[i+len(tokenRe):]
	return rest[:strings.IndexByte(rest, '"')]
}

// passFor solves a challenge as client and returns the pass cookie value.
func (tg *testGate) passFor(t testing.TB, client string) string {
	t.Helper()
	tok := tg.challengeFor(t, client)
	w := tg.do("POST", Prefix+"verify", client, "", url.Values{"token": {tok}, "nonce": {solve(tok, tg.g.cfg.PowDifficulty)}, "return": {"/auth/sign_up"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("verify: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == PassCookie {
			return c.Value
		}
	}
	t.Fatal("no pass cookie")
	return ""
}

func formOf(kv ...string) url.Values {
	v := url.Values{"user[email]": {"a@example.org"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func indexByte(s string, c byte) int { return strings.IndexByte(s, c) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func newTokenForTest(t testing.TB, kind byte, client string, exp time.Time) token {
	t.Helper()
	tok, err := newToken(kind, 4, mustAddr(client), exp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustParse(t testing.TB, tg *testGate, pass string) token {
	t.Helper()
	tok, err := parseToken(pass, tg.g.key, kindPass, mustAddr("192.0.2.1"), tg.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func redisClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// mintPass signs a valid pass for alice with the key in keyFile.
func mintPass(t testing.TB, keyFile string) string {
	t.Helper()
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := newToken(kindPass, 0, netip.MustParseAddr("192.0.2.10"), time.Now().Add(time.Hour))
	return tok.sign(key)
}

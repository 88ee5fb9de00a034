package signupgate

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"

	"github.com/fedigate/fedigate/internal/testenv"
)

// syncBuffer is a log sink tests read while handlers write.
type syncBuffer = testenv.LogBuffer

func testRoutes() configs.Routes { return mastodonRoutes() }

// gateConfig is a config holding what a Guard reads: [signup], the
// routes, the state dir of signup.key and the memory store.
func gateConfig(s configs.Signup, routes configs.Routes, stateDir string) *configs.Config {
	return &configs.Config{Signup: s, Routes: routes, TLS: configs.TLS{StateDir: stateDir},
		RateLimit: configs.RateLimit{Store: configs.StoreMemory}}
}

// newGuard builds a Guard logging to a buffer, with its key in a fresh
// state dir, closed when the test ends.
func newGuard(t testing.TB, cfg configs.Signup, opts Options) (*Guard, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	g, err := New(gateConfig(cfg, testRoutes(), t.TempDir()), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, logs
}

// backend stands in for Mastodon: it counts requests, notes the cookies
// it saw and answers with status (0 = 302 Found) after delay.
type backend struct {
	hits    atomic.Int32
	cookies atomic.Value
	status  atomic.Int32
	delay   time.Duration
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	b.cookies.Store(r.Header.Get("Cookie"))
	time.Sleep(b.delay)
	if st := int(b.status.Load()); st != 0 {
		w.WriteHeader(st)
		return
	}
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("form"))
		return
	}
	http.Redirect(w, r, "/", http.StatusFound)
}

// do sends one request from remote (host:port) to h on host social.test.
func do(h http.Handler, method, target, remote string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, "https://social.test"+target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, "https://social.test"+target, nil)
	}
	r.RemoteAddr = remote
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// challengeToken fetches a challenge page as remote and returns its token.
func challengeToken(t testing.TB, h http.Handler, remote string) string {
	t.Helper()
	body := do(h, "GET", Prefix+"challenge?return=/auth/sign_up", remote, nil).Body.String()
	i := strings.Index(body, tokenRe)
	if i < 0 {
		t.Fatalf("no challenge in the page:\n%s", body)
	}
	rest := body[i+len(tokenRe):]
	return rest[:strings.IndexByte(rest, '"')]
}

// earnPass solves a challenge of bits as remote and returns the pass.
func earnPass(t testing.TB, h http.Handler, remote string, bits int) *http.Cookie {
	t.Helper()
	tok := challengeToken(t, h, remote)
	w := do(h, "POST", Prefix+"verify", remote, url.Values{"token": {tok}, "nonce": {solve(tok, bits)}, "return": {"/auth/sign_up"}})
	for _, c := range w.Result().Cookies() {
		if c.Name == PassCookie {
			return c
		}
	}
	t.Fatalf("no pass: %d %s", w.Code, w.Body.String())
	return nil
}

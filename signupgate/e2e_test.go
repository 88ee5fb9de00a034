package signupgate

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

const signUpForm = `<!doctype html><title>Sign up</title><h1 id="form-title">Create account</h1>
<form method="post" action="/auth"><label for="e">E-mail</label><input id="e" name="user[email]" value="a@example.org">
<button id="go" type="submit">Sign up</button></form>`

// e2eBackend is the Mastodon stand-in behind the gate over TLS.
func e2eBackend(t testing.TB, difficulty int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var posts atomic.Int32
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/auth/sign_up":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, signUpForm)
		case r.Method == http.MethodPost && r.URL.Path == "/auth":
			posts.Add(1)
			http.Redirect(w, r, "/welcome", http.StatusFound)
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, `<!doctype html><title>Welcome</title><h1 id="welcome">Welcome</h1>`)
		}
	})
	cfg := configs.Signup{Gate: configs.GatePoW, PowDifficulty: difficulty, PassTTL: time.Hour, API: configs.APIChallenge}
	routes := configs.Routes{SignupPages: []string{"/auth/sign_up"}, SignupPosts: []string{"/auth"}, APISignup: "/api/v1/accounts"}
	g, err := New(gateConfig(cfg, routes, t.TempDir()), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(g.Middleware(backend))
	t.Cleanup(srv.Close)
	return srv, &posts
}

func TestE2EChromiumSolvesSignsUpAndReplayIsRefused(t *testing.T) {
	srv, posts := e2eBackend(t, 8)
	ctx := testenv.Chromium(t)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.Navigate(srv.URL+"/auth/sign_up"),
		chromedp.WaitVisible(chromedp.CSS("#form-title")),
	); err != nil {
		t.Fatalf("reach the sign-up form through the challenge: %v", err)
	}
	loc, _ := chromedp.Run(tctx, chromedp.Location())
	if loc != srv.URL+"/auth/sign_up" {
		t.Fatalf("landed on %q", loc)
	}
	cookies, err := chromedp.Call(tctx, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var pass *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == PassCookie {
			pass = c
		}
	}
	if pass == nil || !pass.HTTPOnly || !pass.Secure {
		t.Fatalf("pass cookie in Chromium: %+v", pass)
	}
	if err := chromedp.Do(tctx,
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
	); err != nil {
		t.Fatalf("submit the form: %v", err)
	}
	if posts.Load() != 1 {
		t.Fatalf("backend saw %d sign-ups, want 1", posts.Load())
	}

	// The replay: same POST, same cookie, from Go.
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/auth", strings.NewReader(url.Values{"user[email]": {"b@example.org"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: PassCookie, Value: pass.Value})
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || posts.Load() != 1 {
		t.Fatalf("replay: %d, backend saw %d", resp.StatusCode, posts.Load())
	}
}

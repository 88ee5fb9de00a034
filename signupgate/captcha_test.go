package signupgate

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// siteverify is a local stand-in for a provider's siteverify endpoint.
func siteverify(t *testing.T, answer func(w http.ResponseWriter, form url.Values)) (string, func() []url.Values) {
	var mu sync.Mutex
	var seen []url.Values
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		seen = append(seen, r.PostForm)
		mu.Unlock()
		answer(w, r.PostForm)
	}))
	t.Cleanup(s.Close)
	return s.URL, func() []url.Values {
		mu.Lock()
		defer mu.Unlock()
		return append([]url.Values(nil), seen...)
	}
}

func TestCaptchaProviders(t *testing.T) {
	for _, gate := range []string{configs.GateHCaptcha, configs.GateTurnstile} {
		field := map[string]string{configs.GateHCaptcha: "h-captcha-response", configs.GateTurnstile: "cf-turnstile-response"}[gate]
		cases := map[string]struct {
			answer func(w http.ResponseWriter, form url.Values)
			want   int
		}{
			"success": {func(w http.ResponseWriter, f url.Values) { io.WriteString(w, `{"success":true}`) }, http.StatusSeeOther},
			"failure": {func(w http.ResponseWriter, f url.Values) {
				io.WriteString(w, `{"success":false,"error-codes":["invalid-input-response"]}`)
			}, http.StatusForbidden},
			"timeout":        {func(w http.ResponseWriter, f url.Values) { time.Sleep(700 * time.Millisecond) }, http.StatusServiceUnavailable},
			"provider 5xx":   {func(w http.ResponseWriter, f url.Values) { w.WriteHeader(502) }, http.StatusServiceUnavailable},
			"garbage JSON":   {func(w http.ResponseWriter, f url.Values) { io.WriteString(w, `<html>`) }, http.StatusServiceUnavailable},
			"no success key": {func(w http.ResponseWriter, f url.Values) { io.WriteString(w, `{}`) }, http.StatusServiceUnavailable},
			"bad secret": {func(w http.ResponseWriter, f url.Values) {
				io.WriteString(w, `{"success":false,"error-codes":["invalid-input-secret"]}`)
			}, http.StatusServiceUnavailable},
		}
		for name, c := range cases {
			t.Run(gate+"/"+name, func(t *testing.T) {
				verifyURL, seenFn := siteverify(t, c.answer)
				cfg := testConfig()
				cfg.Gate, cfg.SiteKey, cfg.Secret, cfg.VerifyURL, cfg.VerifyTimeout = gate, "site", "sekrit", verifyURL, 300*time.Millisecond
				g, logs := newGuard(t, cfg, Options{})
				h := g.Middleware(&backend{})
				page := do(h, "GET", Prefix+"challenge", alice, nil).Body.String()
				if !strings.Contains(page, `data-sitekey="site"`) {
					t.Fatalf("widget missing:\n%s", page)
				}
				w := do(h, "POST", Prefix+"verify", alice, url.Values{field: {"tok"}, "return": {"/auth/sign_up"}})
				if w.Code != c.want {
					t.Fatalf("%d, want %d", w.Code, c.want)
				}
				got := w.Result().Cookies()
				if (c.want == http.StatusSeeOther) != (len(got) == 1 && got[0].Name == PassCookie) {
					t.Errorf("pass cookie: %v", got)
				}
				seen := seenFn()
				if len(seen) != 1 || seen[0].Get("secret") != "sekrit" || seen[0].Get("response") != "tok" || seen[0].Get("remoteip") != "192.0.2.10" {
					t.Errorf("siteverify got %v", seen)
				}
				if strings.Contains(logs.String(), "sekrit") || strings.Contains(logs.String(), "=tok") {
					t.Error("a secret or token reached the log")
				}
			})
		}
	}
}

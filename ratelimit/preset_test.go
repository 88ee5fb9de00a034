package ratelimit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/configs"
)

// TestAttackMastodonFormatSuffixAndSpellings: Rails routes "/api/v1/accounts.json"
// or "/auth/sign_in/" to the same action as the plain path (Mastodon's
// rack-attack matches them too), so the mastodon preset counts every such
// spelling under the plain path's rule.
func TestAttackMastodonFormatSuffixAndSpellings(t *testing.T) {
	def, err := configs.Default(configs.PresetMastodon)
	if err != nil {
		t.Fatal(err)
	}
	l := mustNew(t, def.RateLimit, Options{})
	rows := []struct{ method, plain, variant string }{
		{"POST", "/api/v1/accounts", "/api/v1/accounts.json"},
		{"POST", "/api/v1/accounts", "/API/v1/accounts/"},
		{"POST", "/auth", "/auth.json"},
		{"POST", "/auth", "//auth/"},
		{"POST", "/auth/sign_in", "/auth/sign_in.json"},
		{"POST", "/auth/password", "/auth/password.json"},
		{"POST", "/auth/confirmation", "/auth/confirmation.json"},
		{"POST", "/api/v1/emails/confirmations", "/api/v1/emails/confirmations.json"},
		{"POST", "/api/v1/apps", "/api/v1/apps.json"},
		{"PATCH", "/auth", "/auth.json"},
	}
	for i, row := range rows {
		// an app token, as API sign-up carries: only the path's own rule counts
		auth := []string{"Authorization", "Bearer x"}
		plain, _ := request(l.Middleware, row.method, row.plain, "198.51.100.1", auth...)
		want := plain.Header().Get("X-RateLimit-Limit")
		if want == "" {
			t.Fatalf("%s %s is not counted", row.method, row.plain)
		}
		client := "203.0.113." + strconv.Itoa(i+1)
		got, _ := request(l.Middleware, row.method, row.variant, client, auth...)
		if got.Header().Get("X-RateLimit-Limit") != want {
			t.Errorf("%s %s: limit %q, want %q as for %s", row.method, row.variant, got.Header().Get("X-RateLimit-Limit"), want, row.plain)
		}
	}
}

// TestPasswordChangeFormCountsAsPUT: Mastodon's password change form is
// POST /auth with "_method=put", which Rails routes as PUT /auth; the
// mastodon preset counts it under password-change (10 per 10 minutes),
// as it does a form whose override two parsers could read differently,
// and the body reaches the backend unchanged.
func TestPasswordChangeFormCountsAsPUT(t *testing.T) {
	def, err := configs.Default(configs.PresetMastodon)
	if err != nil {
		t.Fatal(err)
	}
	l := mustNew(t, def.RateLimit, Options{})
	send := func(client, body string) (*httptest.ResponseRecorder, string) {
		var got []byte
		h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) }))
		r := httptest.NewRequest(http.MethodPost, "http://example.test/auth", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = client + ":40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w, string(got)
	}
	for _, tc := range []struct{ name, body, limit string }{
		{"sign-up form", "user%5Bemail%5D=a%40b.test", "25"},
		{"password change form", "_method=put&user%5Bcurrent_password%5D=x", "10"},
		{"AttackAmbiguousOverride", "_method=post&_method=put", "10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := "198.51.100." + strconv.Itoa(len(tc.body))
			w, got := send(client, tc.body)
			if w.Header().Get("X-RateLimit-Limit") != tc.limit || got != tc.body {
				t.Fatalf("limit %q (want %s), backend read %q", w.Header().Get("X-RateLimit-Limit"), tc.limit, got)
			}
			if tc.limit != "10" {
				return
			}
			for range 9 {
				send(client, tc.body)
			}
			if w, _ := send(client, tc.body); w.Code != http.StatusTooManyRequests {
				t.Fatalf("11th: %d, want 429", w.Code)
			}
		})
	}
}

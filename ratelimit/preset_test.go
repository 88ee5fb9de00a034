package ratelimit

import (
	"strconv"
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

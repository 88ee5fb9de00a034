package configs

import (
	"fmt"
	"net/netip"
	"time"
)

// Preset names.
const (
	PresetMastodon = "mastodon"
	PresetPleroma  = "pleroma"
	PresetAkkoma   = "akkoma"
	PresetCustom   = "custom"
)

// Presets lists the preset names in the order they are documented.
var Presets = []string{PresetMastodon, PresetPleroma, PresetAkkoma, PresetCustom}

// Mastodon's nginx cache rules (dist/nginx.conf).
const (
	cacheWeek      = "public, max-age=604800, must-revalidate"
	cacheFourWeeks = "public, max-age=2419200, must-revalidate"
	cacheImmutable = "public, max-age=2419200, immutable"
	mediaCSP       = "default-src 'none'; form-action 'none'"
)

// gzip types of Mastodon's nginx config; Pleroma's adds the ActivityPub ones.
var mastodonGzipTypes = []string{
	"text/plain", "text/css", "application/json", "application/javascript",
	"text/xml", "application/xml", "application/xml+rss", "text/javascript",
	"image/svg+xml", "image/x-icon",
}

// Default returns the complete configuration of a preset, as if a file
// held only `preset = NAME`. It fails only for an unknown name.
func Default(preset string) (*Config, error) {
	c := &Config{
		Preset: preset,
		Server: Server{
			Listen:            ":443",
			HTTP3:             true,
			TrustedProxies:    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
			ClientIPHeaders:   []string{"CF-Connecting-IP", "X-Forwarded-For"},
			MaxRequestBody:    99 << 20,
			MaxHeaderBytes:    64 << 10,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   30 * time.Second,
			HSTS:              "max-age=63072000; includeSubDomains",
		},
		TLS: TLS{Mode: TLSSelfSigned, StateDir: "./fedigate-state"},
		Backend: Backend{
			Web:                    "http://127.0.0.1:3000",
			Streaming:              "http://127.0.0.1:4000",
			ConnectTimeout:         5 * time.Second,
			ResponseTimeout:        60 * time.Second,
			IdleTimeout:            15 * time.Second,
			MaxIdleConns:           512,
			MaxResponseHeaderBytes: 64 << 10,
		},
		RateLimit: RateLimit{
			Store:        StoreMemory,
			OnStoreError: OnErrAllow,
			StoreTimeout: 100 * time.Millisecond,
			IPv6Prefix:   64,
		},
		Signup: Signup{
			Gate:           GatePoW,
			PowDifficulty:  18,
			PassTTL:        30 * time.Minute,
			API:            APIChallenge,
			VerifyTimeout:  10 * time.Second,
			SurgeThreshold: 50,
			SurgeWindow:    10 * time.Minute,
			SurgeExtraBits: 4,
			SurgeHold:      time.Hour,
		},
		Egress: Egress{
			Listen:          "127.0.0.1:8118",
			Upstream:        "socks5://127.0.0.1:40000",
			DenyPrivate:     true,
			ConnectTimeout:  10 * time.Second,
			IdleTimeout:     90 * time.Second,
			MaxConns:        512,
			MaxConnsPerHost: 32,
			MaxHeaderBytes:  64 << 10,
			Resolver:        ResolverSystem,
			DoHURL:          "https://1.1.1.1/dns-query",
			ProbeURL:        "https://www.cloudflare.com/cdn-cgi/trace",
		},
		Admin: Admin{Listen: "127.0.0.1:9180"},
		Log:   Log{Format: "text", Level: "info"},
	}
	switch preset {
	case PresetMastodon:
		c.Routes = mastodonRoutes()
		c.RateLimit.Rules = mastodonRules()
	case PresetPleroma, PresetAkkoma:
		c.Backend.Web = "http://127.0.0.1:4000"
		c.Backend.Streaming = ""
		c.Server.MaxRequestBody = 16 << 20
		c.Routes = pleromaRoutes()
		c.RateLimit.Rules = pleromaRules()
	case PresetCustom:
		c.Routes = Routes{GzipTypes: mastodonGzipTypes}
		c.Signup.Gate = GateOff
	default:
		return nil, fmt.Errorf("unknown preset %q (want one of %v)", preset, Presets)
	}
	return c, nil
}

// BuiltinDefault is what `fedigate run` uses when there is no config file:
// the mastodon preset, HTTPS on :8443 so no privilege is needed.
func BuiltinDefault() *Config {
	c, _ := Default(PresetMastodon)
	c.Server.Listen = ":8443"
	c.Source = BuiltinSource
	return c
}

func mastodonRoutes() Routes {
	long := map[string]string{"Cache-Control": cacheFourWeeks}
	r := Routes{
		Streaming: []string{"/api/v1/streaming"},
		TryFiles:  true,
		Static: []StaticRoute{
			{Prefix: "/sw.js", Exact: true, Headers: map[string]string{"Cache-Control": cacheWeek}},
			{Prefix: "/system/", OnlyStatic: true, Headers: map[string]string{
				"Cache-Control":           cacheImmutable,
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": mediaCSP,
			}},
		},
		SignupPages: []string{"/auth/sign_up"},
		SignupPosts: []string{"/auth"},
		APISignup:   "/api/v1/accounts",
		GzipTypes:   mastodonGzipTypes,
	}
	for _, p := range []string{"/assets/", "/avatars/", "/emoji/", "/headers/", "/packs/", "/shortcuts/", "/sounds/"} {
		r.Static = append(r.Static, StaticRoute{Prefix: p, OnlyStatic: true, Headers: long})
	}
	return r
}

// mastodonRules mirror Mastodon's per-IP rack-attack throttles
// (config/initializers/rack_attack.rb), plus app registration.
func mastodonRules() []Rule {
	post := []string{"POST"}
	return []Rule{
		{Name: "sign-up", Methods: post, Paths: []string{"/auth", "/auth.*"}, Limit: 25, Period: 5 * time.Minute},
		{Name: "api-sign-up", Methods: post, Paths: []string{"/api/v1/accounts", "/api/v1/accounts.*"}, Limit: 5, Period: 30 * time.Minute},
		{Name: "sign-in", Methods: post, Paths: []string{"/auth/sign_in", "/auth/sign_in.*"}, Limit: 25, Period: 5 * time.Minute},
		{Name: "password-reset", Methods: post, Paths: []string{"/auth/password", "/auth/password.*"}, Limit: 25, Period: 5 * time.Minute},
		{Name: "confirmation", Methods: post, Paths: []string{"/auth/confirmation", "/auth/confirmation.*", "/api/v1/emails/confirmations", "/api/v1/emails/confirmations.*"}, Limit: 25, Period: 5 * time.Minute},
		{Name: "password-change", Methods: []string{"PUT", "PATCH"}, Paths: []string{"/auth", "/auth.*"}, Limit: 10, Period: 10 * time.Minute},
		{Name: "media-proxy", Paths: []string{"/media_proxy*"}, Limit: 30, Period: 10 * time.Minute},
		{Name: "app-registration", Methods: post, Paths: []string{"/api/v1/apps", "/api/v1/apps.*"}, Limit: 25, Period: 30 * time.Minute},
		{Name: "api-unauthenticated", Paths: []string{"/api/*"}, Limit: 300, Period: 5 * time.Minute, Unauthenticated: true},
		signupCheckRule(),
	}
}

func pleromaRoutes() Routes {
	return Routes{
		Streaming:   []string{"/api/v1/streaming", "/api/fedsocket/v1"},
		SignupPages: []string{"/registration"},
		APISignup:   "/api/v1/accounts",
		GzipTypes:   append(append([]string{}, mastodonGzipTypes...), "application/activity+json", "application/atom+xml"),
	}
}

// pleromaRules mirror Pleroma's :rate_limit defaults, plus app registration.
func pleromaRules() []Rule {
	post := []string{"POST"}
	return []Rule{
		{Name: "account-creation", Methods: post, Paths: []string{"/api/v1/accounts"}, Limit: 25, Period: 30 * time.Minute},
		{Name: "authentication", Methods: post, Paths: []string{"/oauth/token", "/oauth/authorize", "/auth/sign_in"}, Limit: 15, Period: time.Minute},
		{Name: "password-reset", Methods: post, Paths: []string{"/auth/password", "/api/v1/pleroma/password_reset"}, Limit: 5, Period: 30 * time.Minute},
		{Name: "confirmation-resend", Methods: post, Paths: []string{"/api/v1/pleroma/accounts/confirmation_resend"}, Limit: 5, Period: 8640 * time.Second},
		{Name: "app-registration", Methods: post, Paths: []string{"/api/v1/apps"}, Limit: 25, Period: 30 * time.Minute},
		signupCheckRule(),
	}
}

// signupCheckRule limits answers to the sign-up gate's challenge: each
// captcha answer costs a call to the provider, and a flood of them must
// not use up the egress for everyone else.
func signupCheckRule() Rule {
	return Rule{Name: "sign-up-check", Methods: []string{"POST"}, Paths: []string{"/.fedigate/verify"}, Limit: 30, Period: 10 * time.Minute}
}

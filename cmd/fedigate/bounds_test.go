package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/ratelimit"
	"github.com/fedigate/fedigate/signupgate"
)

// bound is one range of configs/bounds.go seen from both sides: key =
// value in a file (configs), and the section built in code (the
// package's constructor).
type bound struct {
	section, key, extra string // extra: lines the file needs beside key
	inside, outside     []any
	build               func(t *testing.T, v any) error
}

// configs (a file) and the constructors (a section built in code) accept
// the values just inside each bound and refuse those just outside, both
// of them: ranges used to disagree (ipv6_prefix 1-128 in ratelimit and
// 16-128 in configs; pow_difficulty 1-32 and 8-28; rule periods of 1ms
// and 1s; a surge_window under 60ns divided by zero).
func TestBoundsAgreeBetweenConfigsAndConstructors(t *testing.T) {
	limiter := func(edit func(*configs.RateLimit, any)) func(*testing.T, any) error {
		return func(t *testing.T, v any) error {
			def, _ := configs.Default(configs.PresetMastodon)
			c := def.RateLimit
			edit(&c, v)
			l, err := ratelimit.New(c, ratelimit.Options{MaxMemory: 1 << 40})
			if err == nil {
				l.Close()
			}
			return err
		}
	}
	gate := func(edit func(*configs.Signup, any)) func(*testing.T, any) error {
		return func(t *testing.T, v any) error {
			c, _ := configs.Default(configs.PresetMastodon)
			c.TLS.StateDir = t.TempDir()
			c.Signup.SurgeThreshold = 0
			edit(&c.Signup, v)
			g, err := signupgate.New(c, signupgate.Options{})
			if err == nil {
				g.Close()
			}
			return err
		}
	}
	rule := "[[ratelimit.rule]]\nname = \"r\"\npaths = [\"/x\"]\n"
	surge := func(pow int) string {
		return fmt.Sprintf("surge_threshold = 5\nsurge_hold = \"10m\"\nsurge_window = \"1m\"\npow_difficulty = %d\n", pow)
	}
	withSurge := func(pow int, s *configs.Signup) {
		s.SurgeThreshold, s.SurgeHold, s.SurgeWindow, s.PowDifficulty = 5, 10*time.Minute, time.Minute, pow
	}
	for _, b := range []bound{
		{"ratelimit", "ipv6_prefix", "", []any{configs.MinIPv6Prefix, configs.MaxIPv6Prefix}, []any{configs.MinIPv6Prefix - 1, configs.MaxIPv6Prefix + 1},
			limiter(func(c *configs.RateLimit, v any) { c.IPv6Prefix = v.(int) })},
		{"ratelimit", "store_timeout", "", []any{time.Millisecond, configs.MaxStoreTimeout}, []any{time.Duration(0), configs.MaxStoreTimeout + time.Millisecond},
			limiter(func(c *configs.RateLimit, v any) { c.StoreTimeout = v.(time.Duration) })},
		{"ratelimit", "limit", rule + "period = \"1h\"\n", []any{1, configs.MaxRuleLimit}, []any{0, configs.MaxRuleLimit + 1},
			limiter(func(c *configs.RateLimit, v any) {
				c.Rules = []configs.Rule{{Name: "r", Paths: []string{"/x"}, Period: time.Hour, Limit: v.(int)}}
			})},
		{"ratelimit", "period", rule + "limit = 1\n", []any{configs.MinRulePeriod}, []any{configs.MinRulePeriod - time.Millisecond},
			limiter(func(c *configs.RateLimit, v any) {
				c.Rules = []configs.Rule{{Name: "r", Paths: []string{"/x"}, Limit: 1, Period: v.(time.Duration)}}
			})},
		{"signup", "pow_difficulty", "surge_threshold = 0\n", []any{configs.MinPowDifficulty, configs.MaxPowDifficulty}, []any{configs.MinPowDifficulty - 1, configs.MaxPowDifficulty + 1},
			gate(func(s *configs.Signup, v any) { s.PowDifficulty = v.(int) })},
		{"signup", "pass_ttl", "", []any{configs.MinPassTTL, configs.MaxPassTTL}, []any{configs.MinPassTTL - time.Second, configs.MaxPassTTL + time.Second},
			gate(func(s *configs.Signup, v any) { s.PassTTL = v.(time.Duration) })},
		{"signup", "surge_extra_bits", surge(20), []any{0, configs.MaxSurgeExtraBits}, []any{-1, configs.MaxSurgeExtraBits + 1},
			gate(func(s *configs.Signup, v any) { withSurge(20, s); s.SurgeExtraBits = v.(int) })},
		{"signup", "surge_extra_bits", surge(configs.MaxPowDifficulty), []any{configs.MaxPowTotal - configs.MaxPowDifficulty}, []any{configs.MaxPowTotal - configs.MaxPowDifficulty + 1},
			gate(func(s *configs.Signup, v any) { withSurge(configs.MaxPowDifficulty, s); s.SurgeExtraBits = v.(int) })},
		{"signup", "surge_window", "surge_threshold = 5\nsurge_hold = \"10m\"\n", []any{configs.MinSurgeWindow}, []any{configs.MinSurgeWindow - time.Nanosecond, 59 * time.Nanosecond},
			gate(func(s *configs.Signup, v any) { withSurge(16, s); s.SurgeWindow = v.(time.Duration) })},
	} {
		for i, v := range append(append([]any{}, b.inside...), b.outside...) {
			want := i < len(b.inside)
			file := fileAccepts(b, v)
			err := b.build(t, v)
			if file != want || (err == nil) != want {
				t.Errorf("%s.%s = %v: configs accepts %v, the constructor accepts %v (%v); want both %v", b.section, b.key, v, file, err == nil, err, want)
			}
		}
	}
}

// fileAccepts reports whether configs accepts key = v in a mastodon file.
func fileAccepts(b bound, v any) bool {
	val := fmt.Sprint(v)
	if d, ok := v.(time.Duration); ok {
		val = fmt.Sprintf("%q", d.String())
	}
	head := "[" + b.section + "]\n"
	if b.key == "limit" || b.key == "period" {
		head = "" // inside the rule of extra
	}
	text := "preset = \"mastodon\"\n[tls]\nstate_dir = \"/nonexistent\"\n" + head + b.extra + b.key + " = " + val + "\n"
	_, err := configs.Parse("bounds.toml", []byte(text))
	return err == nil
}

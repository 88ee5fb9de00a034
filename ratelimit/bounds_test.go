package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// configs (a file) and New (a section built in code) agree on every bound
// of [ratelimit]: the values just inside are accepted by both, the values
// just outside refused by both (they used to disagree: ipv6_prefix 1-128
// here, 16-128 in configs; periods of 1ms here, 1s there).
func TestBoundsAgreeWithConfigs(t *testing.T) {
	for _, b := range []struct {
		key     string
		inside  []any
		outside []any
		set     func(*configs.RateLimit, any)
	}{
		{"ipv6_prefix", []any{configs.MinIPv6Prefix, configs.MaxIPv6Prefix}, []any{configs.MinIPv6Prefix - 1, configs.MaxIPv6Prefix + 1},
			func(c *configs.RateLimit, v any) { c.IPv6Prefix = v.(int) }},
		{"store_timeout", []any{time.Millisecond, configs.MaxStoreTimeout}, []any{time.Duration(0), configs.MaxStoreTimeout + time.Millisecond},
			func(c *configs.RateLimit, v any) { c.StoreTimeout = v.(time.Duration) }},
		{"rule.limit", []any{1, configs.MaxRuleLimit}, []any{0, configs.MaxRuleLimit + 1},
			func(c *configs.RateLimit, v any) { c.Rules = []configs.Rule{newRule("r", v.(int), time.Hour, "/x")} }},
		{"rule.period", []any{configs.MinRulePeriod}, []any{configs.MinRulePeriod - time.Millisecond},
			func(c *configs.RateLimit, v any) { c.Rules = []configs.Rule{newRule("r", 1, v.(time.Duration), "/x")} }},
	} {
		for _, v := range append(append([]any{}, b.inside...), b.outside...) {
			want := len(b.inside) > 0 && contains(b.inside, v)
			fromFile := fileOK(t, b.key, v)
			cfg := baseConfig()
			b.set(&cfg, v)
			l, err := New(cfg, Options{MaxMemory: 1 << 40})
			if err == nil {
				l.Close()
			}
			if fromFile != want || (err == nil) != want {
				t.Errorf("%s = %v: configs accepts %v, New accepts %v (%v); want both %v", b.key, v, fromFile, err == nil, err, want)
			}
		}
	}
}

func contains(xs []any, v any) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// fileOK reports whether configs accepts key = v in a mastodon config.
func fileOK(t *testing.T, key string, v any) bool {
	t.Helper()
	val := fmt.Sprint(v)
	if d, ok := v.(time.Duration); ok {
		val = fmt.Sprintf("%q", d.String())
	}
	text := "preset = \"mastodon\"\n[tls]\nstate_dir = \"/nonexistent\"\n[ratelimit]\n"
	switch key {
	case "rule.limit":
		text += fmt.Sprintf("[[ratelimit.rule]]\nname = \"r\"\npaths = [\"/x\"]\nperiod = \"1h\"\nlimit = %s\n", val)
	case "rule.period":
		text += fmt.Sprintf("[[ratelimit.rule]]\nname = \"r\"\npaths = [\"/x\"]\nlimit = 1\nperiod = %s\n", val)
	default:
		text += key + " = " + val + "\n"
	}
	_, err := configs.Parse("bounds.toml", []byte(text))
	return err == nil
}

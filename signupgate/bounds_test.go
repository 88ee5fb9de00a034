package signupgate

import (
	"fmt"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// configs (a file) and New (a section built in code) agree on every bound
// of [signup]: the values just inside are accepted by both, the values
// just outside refused by both (they used to disagree: pow_difficulty
// 1-32 here, 8-28 in configs; a surge_window under 60ns divided by zero).
func TestBoundsAgreeWithConfigs(t *testing.T) {
	surge := "surge_threshold = 5\nsurge_hold = \"10m\"\n"
	for _, b := range []struct {
		key, extra string
		inside     []any
		outside    []any
		set        func(*configs.Signup, any)
	}{
		{"pow_difficulty", "surge_threshold = 0\n", []any{configs.MinPowDifficulty, configs.MaxPowDifficulty}, []any{configs.MinPowDifficulty - 1, configs.MaxPowDifficulty + 1},
			func(c *configs.Signup, v any) { c.PowDifficulty = v.(int) }},
		{"pass_ttl", "", []any{configs.MinPassTTL, configs.MaxPassTTL}, []any{configs.MinPassTTL - time.Second, configs.MaxPassTTL + time.Second},
			func(c *configs.Signup, v any) { c.PassTTL = v.(time.Duration) }},
		{"surge_extra_bits", surge + "pow_difficulty = 22\nsurge_window = \"1m\"\n", []any{0, configs.MaxSurgeExtraBits}, []any{-1, configs.MaxSurgeExtraBits + 1},
			func(c *configs.Signup, v any) {
				c.SurgeThreshold, c.SurgeHold, c.PowDifficulty, c.SurgeWindow, c.SurgeExtraBits = 5, 10*time.Minute, 22, time.Minute, v.(int)
			}},
		{"surge_extra_bits", surge + "pow_difficulty = 28\nsurge_window = \"1m\"\n", []any{configs.MaxPowTotal - 28}, []any{configs.MaxPowTotal - 28 + 1},
			func(c *configs.Signup, v any) {
				c.SurgeThreshold, c.SurgeHold, c.PowDifficulty, c.SurgeWindow, c.SurgeExtraBits = 5, 10*time.Minute, 28, time.Minute, v.(int)
			}},
		{"surge_window", surge, []any{configs.MinSurgeWindow}, []any{configs.MinSurgeWindow - time.Nanosecond, 59 * time.Nanosecond},
			func(c *configs.Signup, v any) {
				c.SurgeThreshold, c.SurgeHold, c.SurgeWindow = 5, 10*time.Minute, v.(time.Duration)
			}},
	} {
		for _, v := range append(append([]any{}, b.inside...), b.outside...) {
			want := contains(b.inside, v)
			fromFile := fileOK(t, b.key, b.extra, v)
			s := testConfig()
			b.set(&s, v)
			g, err := New(gateConfig(s, mastodonRoutes(), t.TempDir()), Options{})
			if err == nil {
				g.Close()
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

// fileOK reports whether configs accepts key = v (and extra) in a
// mastodon config's [signup].
func fileOK(t *testing.T, key, extra string, v any) bool {
	t.Helper()
	val := fmt.Sprint(v)
	if d, ok := v.(time.Duration); ok {
		val = fmt.Sprintf("%q", d.String())
	}
	text := "preset = \"mastodon\"\n[tls]\nstate_dir = \"/nonexistent\"\n[signup]\ngate = \"pow\"\n" + extra + key + " = " + val + "\n"
	_, err := configs.Parse("bounds.toml", []byte(text))
	return err == nil
}

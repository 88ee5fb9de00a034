package federation

import (
	"strings"
	"testing"

	"github.com/fedigate/fedigate/configs"
)

// quickFilters are substring-only rules: apply may pass a body unparsed.
func quickFilters(t testing.TB) *filters {
	fs, err := compileFilters([]configs.Filter{
		{Name: "discord-invites", Match: []string{"discord.gg/"}, Action: "drop"},
		{Name: "casino", Match: []string{"casino", "\"<é"}, MinMentions: 1, Action: "reject"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !fs.quick {
		t.Fatal("substring-only rules do not take the quick path")
	}
	return fs
}

// TestQuickPathEscapeAttacks: a substring hidden by JSON escapes (each
// letter, the slash, a surrogate pair near it, upper-case hex, escaped
// backslashes before it) is still found when the quick pass and the
// per-string pre-check are on, and the verdict is the full parse's.
func TestQuickPathEscapeAttacks(t *testing.T) {
	fs := quickFilters(t)
	create := func(content string) string { return `{"type":"Create","object":{"content":"` + content + `"}}` }
	rows := []struct {
		name, body string
		rule       int
	}{
		{"first letter escaped", create(`\u0064iscord.gg/x`), 0},
		{"upper-case hex", create(`\u0044ISCORD\u002Egg\u002fx`), 0},
		{"escaped slash", create(`discord.gg\/x`), 0},
		{"every byte escaped", create(`\u0064\u0069\u0073\u0063\u006f\u0072\u0064\u002e\u0067\u0067\u002f`), 0},
		{"after a surrogate pair", create(`\ud83d\ude00discord.gg/`), 0},
		{"after escaped backslashes", create(`\\\\discord.gg/`), 0},
		{"Mastodon's escapes around it", create(`\u003cp\u003ediscord.gg/\u003c/p\u003e`), 0},
		{"a non-ASCII substring from an escape", `{"type":"Note","content":"\"\u003c\u00e9"}`, -1}, // needs a Mention
		{"a non-ASCII substring with a mention", `{"type":"Note","content":"\"\u003c\u00e9","tag":{"type":"Mention"}}`, 1},
		{"lone surrogate is U+FFFD, not the substring", create(`\ud800discord.gg`), -1},
		{"in a key it is not read", `{"type":"Create","object":{"\u0064iscord.gg/":"x"}}`, -1},
		{"malformed escape in content: not JSON", `{"type":"Create","object":{"content":"\x discord.gg/"}}`, -1},
		{"malformed escape in a clean text before a match: not JSON", `{"type":"Create","object":{"name":"\q","content":"discord.gg/"}}`, -1},
		{"escaped quote does not end the string", create(`\"discord.gg/`), 0},
		{"clean Mastodon note", activity("real.example", "<p>hello & <a href=\"https://x.example/\">bye</a></p>", ""), -1},
		{"deep but clean", `{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, -1},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			v, _ := fs.apply([]byte(r.body), nil)
			full, _ := fs.parse([]byte(r.body), nil, false)
			if v.rule != r.rule || v.rule != full.rule || v.tooDeep != full.tooDeep {
				t.Errorf("verdict %+v, full parse %+v, want rule %d", v, full, r.rule)
			}
		})
	}
	if v, _ := fs.apply([]byte(`{"a":`+strings.Repeat("[", 70)+strings.Repeat("]", 70)+`}`), nil); !v.tooDeep {
		t.Errorf("a body nested 70 deep is not refused on the quick path: %+v", v)
	}
}

// FuzzQuickPath: with the pre-checks (the quick pass over the body and
// the per-string one) the verdict is the full parse's, for substring-only
// rules and for rules with RE2 patterns and mention counts.
func FuzzQuickPath(f *testing.F) {
	for _, s := range []string{
		spamWave("spam.example", 2),
		activity("real.example", "<p>hi & <b>bye</b></p>", `[{"type":"Mention","href":"https://x.example/u"}]`),
		`{"type":"Create","object":{"content":"a\u0064iscord.gg\/\ud83d\ude00\ud800\"\u003c\u00e9"}}`,
		`{"type":"Create","object":{"content":"\\\\\"casino\u0063asino"},"tag":[{"type":"Mention"}]}`,
		`{"type":"Update","object":{"name":"\q","summary":"discord.gg/"}}`, `{"a":"\`, `{"a":[[[[{}]]]]}`,
	} {
		f.Add([]byte(s))
	}
	quick := quickFilters(f)
	mixed, err := compileFilters([]configs.Filter{
		{Name: "d", Match: []string{"discord.gg/", `re:c[a4]sino`}, Action: "drop"},
		{Name: "m", MinMentions: 2, Action: "reject"},
		{Name: "e", Match: []string{"é\"<"}, Action: "reject"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, fs := range []*filters{quick, mixed} {
			v, _ := fs.apply(body, nil)
			full, _ := fs.parse(body, nil, false)
			if v.rule != full.rule || v.tooDeep != full.tooDeep {
				t.Fatalf("pre-checked %+v, full parse %+v: %q", v, full, body)
			}
		}
	})
}

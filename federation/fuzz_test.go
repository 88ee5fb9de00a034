package federation

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/configs"
)

// checkClaim: a claim with a domain names a valid lower-case host.
func checkClaim(t *testing.T, c claim) {
	if c.status == sigOK && (!validHost(c.domain) || strings.ToLower(c.domain) != c.domain) {
		t.Fatalf("claimed domain %q is not a lower-case host", c.domain)
	}
	if c.status != sigOK && c.domain != "" {
		t.Fatalf("status %d with a domain %q", c.status, c.domain)
	}
}

// FuzzCavageKeyID: the draft-cavage parser never panics and only names
// valid hosts; a keyId it reads is the host of a keyId in the header.
func FuzzCavageKeyID(f *testing.F) {
	for _, s := range []string{
		`keyId="https://a.example/users/a#main-key",algorithm="rsa-sha256",headers="(request-target) host date digest",signature="abc=="`,
		`Signature keyId="acct:a@b.example",created=1700000000,expires=1700000300`,
		`keyId="https://a.example/x",keyId="https://b.example/x"`,
		` keyId = "https://a.example:8443/" , x=y`,
		`keyId="https://a\"b.example/"`, `keyId=`, `,`, `keyId="https://a.example/"x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := readClaim(http.Header{"Signature": {s}})
		checkClaim(t, c)
		if c.status == sigOK && !strings.Contains(strings.ToLower(s), c.domain) {
			t.Fatalf("domain %q is not in the header %q", c.domain, s)
		}
	})
}

// FuzzRFC9421KeyID: the structured-field parser of Signature-Input never
// panics and only names valid hosts.
func FuzzRFC9421KeyID(f *testing.F) {
	for _, s := range []string{
		`sig1=("@method" "@target-uri" "content-digest");created=1618884475;keyid="https://a.example/users/a#main-key"`,
		`sig1=("@method");alg="rsa-v1_5-sha256";keyid="https://a.example/k", sig2=();keyid="https://a.example/k2"`,
		`a=("x";p=?1 "y");keyid="acct:a@b.example";d=@1700000000;e=%"caf%c3%a9";n=-1.5;t=tok/en:x`,
		`sig1=("@method";keyid="https://x.example/"`, `sig1=:YWJj:`, `sig1=("a"),`, `*k=()`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := readClaim(http.Header{"Signature-Input": {s}})
		checkClaim(t, c)
		// Content-Digest goes through the same dictionary parser
		_ = checkDigests(http.Header{"Content-Digest": {s}}, []byte(s))
	})
}

// FuzzBlocklist: the CSV reader never panics; a list it accepts holds
// only valid lower-case names; a fault names the file and a line.
func FuzzBlocklist(f *testing.F) {
	for _, s := range []string{
		"#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\nspam.example,suspend,true,true,,false\nloud.example,silence,false,false,,false\n",
		"domain,severity\nA.Example.,suspend\n",
		"\xef\xbb\xbf#domain,#severity\nbücher.example,suspend\n",
		"#domain,#severity\n\"x\ny\",suspend\n", "#domain\n", "", "#severity,#domain\nnoop,a.example\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := parseBlocklist("f.csv", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.csv:") {
				t.Fatalf("fault without file:line: %v", err)
			}
			return
		}
		for d := range b.set.exact {
			if !validHost(d) || strings.ToLower(d) != d {
				t.Fatalf("listed %q", d)
			}
		}
	})
}

// FuzzFilterMatcher: the activity scanner never panics; every body
// encoding/json accepts (not nested too deeply) is read as JSON; and
// whatever a last-key-wins decoder would find in content is found too.
func FuzzFilterMatcher(f *testing.F) {
	for _, s := range []string{
		spamWave("spam.example", 2),
		activity("real.example", "<p>hi</p>", `[{"type":"Mention","href":"https://x.example/u"}]`),
		`{"type":"Create","object":{"content":"a\u0064iscord.gg/\ud83d\ude00\ud800"}}`,
		`{"type":["Update","x"],"object":[{"contentMap":{"en":"discord.gg/"}},1,null,true,-1.5e3]}`,
		`[1,2]`, `{"a":}`, `{"content":"x"} trailing`, `"str"`, `{"object":{"object":{"content":"discord.gg/"}}}`,
	} {
		f.Add([]byte(s))
	}
	fs, err := compileFilters([]configs.Filter{{Name: "d", Match: []string{"discord.gg/"}, Action: "drop"}, {Name: "m", MinMentions: 2, Action: "reject"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, _ := fs.apply(body, nil)
		if !json.Valid(body) {
			return
		}
		var top map[string]any
		if json.Unmarshal(body, &top) != nil {
			if v.rule >= 0 && !v.notJSON && !v.tooDeep && body[0] != '{' {
				t.Fatalf("a non-object matched: %+v", v)
			}
			return
		}
		if v.tooDeep {
			return
		}
		if v.notJSON {
			t.Fatalf("valid JSON object read as not JSON: %q", body)
		}
		hit := func(m map[string]any) bool {
			s, _ := m["content"].(string)
			return strings.Contains(strings.ToLower(s), "discord.gg/")
		}
		want := hit(top)
		if typ, _ := top["type"].(string); typ == "Create" || typ == "Update" {
			if obj, ok := top["object"].(map[string]any); ok && hit(obj) {
				want = true
			}
		}
		if want && v.rule != 0 {
			t.Fatalf("content with discord.gg/ not matched (verdict %+v): %q", v, body)
		}
	})
}

// FuzzContainsFold: the filters' substring search finds what a search
// of the text folded to lower case finds (ASCII case only, as filters
// fold).
func FuzzContainsFold(f *testing.F) {
	for _, s := range [][2]string{
		{"Join us at DISCORD.GG/abc", "discord.gg/"}, {"dddddiscord", "discord"}, {"dDdD", "dd"},
		{"", "a"}, {"a", ""}, {"ab", "abc"}, {"xx\u00c9", "\u00e9"}, {"1234", "34"},
	} {
		f.Add(s[0], s[1])
	}
	lower := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c - 'A' + 'a'
			}
		}
		return string(b)
	}
	f.Fuzz(func(t *testing.T, h, sub string) {
		sub = lower(sub)
		if got, want := containsFold([]byte(h), sub), strings.Contains(lower(h), sub); got != want {
			t.Fatalf("containsFold(%q, %q) = %v, want %v", h, sub, got, want)
		}
	})
}

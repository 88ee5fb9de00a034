package federation

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/configs"
)

// spamWave is a delivery of the February 2024 kind: a mention spam with
// an image and a Discord invite.
func spamWave(host string, mentions int) string {
	tags := []string{}
	for i := range mentions {
		tags = append(tags, `{"type":"Mention","href":"https://victim.example/users/v`+string(rune('a'+i))+`","name":"@v@victim.example"}`)
	}
	return `{"@context":"https://www.w3.org/ns/activitystreams","type":"Create","actor":"https://` + host + `/users/x",` +
		`"object":{"type":"Note","content":"<p>join https://discord.gg/abc now</p>","attachment":[{"type":"Document","mediaType":"image/png","url":"https://` + host + `/m.png"}],` +
		`"tag":[` + strings.Join(tags, ",") + `]}}`
}

// TestFilters: drop answers 202 and never reaches the backend, reject
// answers 403; the fields read are the activity's and (for Create and
// Update) its object's.
func TestFilters(t *testing.T) {
	cfg := testConfig(func(f *configs.Federation) {
		f.CheckDigest = false
		f.Filters = []configs.Filter{
			{Name: "discord-invites", Match: []string{"discord.gg/"}, Action: "drop"},
			{Name: "mention-flood", MinMentions: 5, Action: "reject"},
			{Name: "image-host", Match: []string{`re:https://cdn\.bad\.example/[a-z]+\.png`}, Action: "reject"},
			{Name: "casino-with-mentions", Match: []string{"casino"}, MinMentions: 2, Action: "drop"},
		}
	})
	e := startEdge(t, cfg, Options{})
	note := func(typ, field, value string) string {
		return `{"type":"` + typ + `","object":{"type":"Note",` + jsonString(field) + `:` + value + `}}`
	}
	rows := []struct {
		name, body string
		want       int
		reached    bool
	}{
		{"the February 2024 wave is dropped", spamWave("spam.example", 1), 202, false},
		{"a clean note passes", activity("real.example", "<p>hello</p>", ""), 202, true},
		{"case does not hide a substring", note("Create", "content", `"DISCORD.GG/x"`), 202, false},
		{"a JSON escape does not hide it", note("Create", "content", `"discord.gg\/x"`), 202, false},
		{"a \\u escape does not hide it", note("Create", "content", `"\u0064iscord.gg/x"`), 202, false},
		{"summary", note("Create", "summary", `"discord.gg/x"`), 202, false},
		{"name", note("Create", "name", `"discord.gg/x"`), 202, false},
		{"contentMap", note("Create", "contentMap", `{"en":"discord.gg/x"}`), 202, false},
		{"attachment url", note("Create", "attachment", `[{"type":"Image","url":"https://discord.gg/x.png"}]`), 202, false},
		{"attachment url as Link list", note("Create", "attachment", `[{"type":"Image","url":[{"type":"Link","href":"https://discord.gg/x"}]}]`), 202, false},
		{"tag href", note("Create", "tag", `[{"type":"Hashtag","href":"https://discord.gg/x"}]`), 202, false},
		{"an Update's object", note("Update", "content", `"discord.gg/x"`), 202, false},
		{"an Announce's embedded object is not read", note("Announce", "content", `"discord.gg/x"`), 202, true},
		{"the activity's own content", `{"type":"Note","content":"discord.gg/x"}`, 202, false},
		{"a second content key is read too", `{"type":"Create","object":{"content":"clean","content":"discord.gg/x"}}`, 202, false},
		{"type after object", `{"object":{"content":"discord.gg/x"},"type":"Create"}`, 202, false},
		{"type as a list", `{"type":["Create"],"object":{"content":"discord.gg/x"}}`, 202, false},
		{"an object list", `{"type":"Create","object":[{"content":"discord.gg/x"}]}`, 202, false},
		{"min_mentions alone rejects", spamWaveNoInvite(5), 403, false},
		{"under min_mentions passes", spamWaveNoInvite(4), 202, true},
		{"RE2 pattern rejects", note("Create", "attachment", `{"url":"https://cdn.bad.example/abc.png"}`), 403, false},
		{"match without enough mentions passes", note("Create", "content", `"casino"`), 202, true},
		{"match with enough mentions drops", `{"type":"Create","object":{"content":"casino","tag":[{"type":"Mention"},{"type":"Mention"}]}}`, 202, false},
		{"not JSON goes to the backend", `discord.gg/ not json`, 202, true},
		{"truncated JSON goes to the backend", `{"type":"Create","object":{"content":"discord.gg/`, 202, true},
		{"too deep is refused", `{"type":"Create","object":{"content":"x","a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, 400, false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			before := len(e.be.requests())
			resp := e.post(t, "/inbox", cavageHeader("https://sender.example/users/x"), r.body)
			if resp.StatusCode != r.want {
				t.Errorf("status %d, want %d; log:\n%s", resp.StatusCode, r.want, e.logs)
			}
			if reached := len(e.be.requests()) > before; reached != r.reached {
				t.Errorf("reached the backend: %v, want %v", reached, r.reached)
			}
		})
	}
	if !strings.Contains(e.logs.String(), `domain=sender.example verdict=dropped rule=discord-invites`) {
		t.Errorf("no refusal line naming the filter:\n%s", e.logs)
	}
}

func spamWaveNoInvite(mentions int) string {
	return strings.Replace(spamWave("spam.example", mentions), "discord.gg/abc", "example.org", 1)
}

// TestFedifySpamDropped: a spam delivery signed by Fedify in both formats
// is dropped with 202, so the sender does not retry, and the backend never
// sees it.
func TestFedifySpamDropped(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) {
		f.Filters = []configs.Filter{{Name: "discord-invites", Match: []string{"discord.gg/"}, Action: "drop"}}
	}), Options{})
	body := spamWave("spam.example", 3)
	for i, h := range fedifySign(t,
		signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://spam.example/users/x#main-key", Spec: specCavage},
		signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://spam.example/users/x#main-key", Spec: specRFC9421}) {
		if resp := e.post(t, "/inbox", h, body); resp.StatusCode != http.StatusAccepted {
			t.Errorf("delivery %d: status %d, want 202", i, resp.StatusCode)
		}
	}
	if n := len(e.be.requests()); n != 0 {
		t.Errorf("backend saw %d spam deliveries", n)
	}
}

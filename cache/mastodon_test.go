package cache

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// mastodonStatus answers as Mastodon's StatusesController does with public
// fetch on: public JSON or HTML by Accept, and private, no-store (with a
// session cookie) when the request carries a header Vary names.
func mastodonStatus(n int, r *http.Request) (int, []string, string) {
	vary := "Vary: Accept, Accept-Language, Cookie"
	if _, ok := r.Header["Cookie"]; ok {
		return 200, []string{"Cache-Control: private, no-store", vary, "Set-Cookie: _mastodon_session=x"}, "<html>signed in " + strconv.Itoa(n)
	}
	if strings.Contains(r.Header.Get("Accept"), "json") && !strings.Contains(r.Header.Get("Accept"), "*/*") {
		return 200, []string{"Cache-Control: max-age=180, public", vary, "Content-Type: application/activity+json"}, `{"type":"Note","n":` + strconv.Itoa(n) + `}`
	}
	return 200, []string{"Cache-Control: max-age=10, public", vary, "Content-Type: text/html"}, "<html>public " + strconv.Itoa(n)
}

// TestMastodonSignedFetchersShareOneAnswer: many instances fetch one public
// status, each with its own HTTP signature; Signature is not in Vary, so
// one stored answer serves them all, whichever ActivityPub Accept they send.
func TestMastodonSignedFetchersShareOneAnswer(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), mastodonStatus)
	accepts := []string{
		"application/activity+json",
		`application/ld+json; profile="https://www.w3.org/ns/activitystreams"`,
		`application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"`,
	}
	for i := 0; i < 60; i++ {
		_, body := rg.do("GET", "/users/alice/statuses/1",
			"Accept: "+accepts[i%len(accepts)],
			`Signature: keyId="https://remote`+strconv.Itoa(i)+`.example/actor#main-key",headers="(request-target) host date",signature="sig`+strconv.Itoa(i)+`"`,
			"Date: Sun, 01 Mar 2026 12:00:0"+strconv.Itoa(i%10)+" GMT")
		if body != `{"type":"Note","n":1}` {
			t.Fatalf("fetch %d: body %q", i, body)
		}
	}
	if n := rg.fetches.Load(); n != 1 {
		t.Fatalf("%d backend fetches for 60 signed fetchers, want 1", n)
	}
}

// TestMastodonHTMLApartFromJSON: a browser gets the HTML page, a fetcher the
// JSON; each is stored apart, and "application/json, */*" (HTML to Rails)
// is not taken for JSON.
func TestMastodonHTMLApartFromJSON(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), mastodonStatus)
	browser := "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	if _, b := rg.do("GET", "/@alice/1", browser); !strings.HasPrefix(b, "<html>public") {
		t.Fatalf("browser got %q", b)
	}
	if _, b := rg.do("GET", "/@alice/1", "Accept: application/activity+json"); !strings.HasPrefix(b, `{"type"`) {
		t.Fatalf("fetcher got %q", b)
	}
	if _, b := rg.do("GET", "/@alice/1", "Accept: text/html"); !strings.HasPrefix(b, "<html>public 1") || rg.lastResult() != Hit {
		t.Fatalf("second browser got %q (%v): want the stored HTML", b, rg.lastResult())
	}
	if _, b := rg.do("GET", "/@alice/1", "Accept: application/json, */*"); !strings.HasPrefix(b, "<html>") {
		t.Fatalf(`"application/json, */*" got %q: want what the backend says (HTML)`, b)
	}
	if n := rg.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3 (HTML, JSON, the */* value)", n)
	}
}

// TestCustomKeepsAcceptValues: without the preset's classes, two spellings
// of the ActivityPub type are two variants.
func TestCustomKeepsAcceptValues(t *testing.T) {
	cfg := defaultCacheConfig()
	cfg.NormalizeAccept = false
	rg := newRig(t, cfg, mastodonStatus)
	rg.do("GET", "/p", "Accept: application/activity+json")
	rg.do("GET", "/p", `Accept: application/ld+json; profile="https://www.w3.org/ns/activitystreams"`)
	rg.do("GET", "/p", "Accept: application/activity+json")
	if n := rg.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// TestSignedInBrowserNotServedAnonymousCopy: with the anonymous page
// stored, a request with a session cookie still goes to the backend, and
// its private answer (with Set-Cookie) is never stored or shared.
func TestSignedInBrowserNotServedAnonymousCopy(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), mastodonStatus)
	rg.do("GET", "/@alice/1", "Accept: text/html")
	resp, b := rg.do("GET", "/@alice/1", "Accept: text/html", "Cookie: _mastodon_session=alice")
	if !strings.HasPrefix(b, "<html>signed in") || resp.Header.Get("Set-Cookie") == "" {
		t.Fatalf("signed-in browser got %q", b)
	}
	_, b = rg.do("GET", "/@alice/1", "Accept: text/html", "Cookie: _mastodon_session=alice")
	if !strings.HasPrefix(b, "<html>signed in 3") {
		t.Fatalf("second signed-in request got %q: the private answer was stored", b)
	}
	resp, b = rg.do("GET", "/@alice/1", "Accept: text/html")
	if b != "<html>public 1" || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("anonymous got %q with Set-Cookie %q", b, resp.Header.Get("Set-Cookie"))
	}
}

// TestCookieOnlyWithVaryCookie: an answer to a request with a cookie is
// stored only when Vary names Cookie; a request with a cookie is never
// served an answer that does not vary on it.
func TestCookieOnlyWithVaryCookie(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), fixed(200, "x", "Cache-Control: public, max-age=60"))
	rg.do("GET", "/p", "Cookie: a=1")
	rg.do("GET", "/p", "Cookie: a=1")
	if rg.fetches.Load() != 2 {
		t.Fatalf("%d fetches: an answer to a cookie was stored without Vary: Cookie", rg.fetches.Load())
	}
	rg.do("GET", "/p")
	rg.do("GET", "/p", "Cookie: a=1")
	if rg.fetches.Load() != 4 || rg.lastResult() != Miss {
		t.Fatalf("a request with a cookie was served the shared answer")
	}
}

// TestAPIPrivateNoStoreNeverStored: Rails' default for the API.
func TestAPIPrivateNoStoreNeverStored(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), fixed(200, `[]`, "Cache-Control: private, no-store", "Vary: Authorization"))
	for i := 0; i < 3; i++ {
		rg.do("GET", "/api/v1/timelines/home", "Authorization: Bearer tok")
	}
	if rg.fetches.Load() != 3 {
		t.Fatalf("%d fetches, want 3", rg.fetches.Load())
	}
}

// TestNothingChangesHostPathQueryBody: deliveries and fetches are signed
// over them; the backend sees them exactly as the client sent them.
func TestNothingChangesHostPathQueryBody(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), fixed(202, "", "Cache-Control: max-age=60"))
	var got string
	var gotBody []byte
	rg.setAnswer(func(_ int, r *http.Request) (int, []string, string) {
		got = r.Host + " " + r.RequestURI
		gotBody, _ = io.ReadAll(r.Body)
		return 202, []string{"Cache-Control: max-age=60"}, ""
	})
	req, _ := http.NewRequest("POST", rg.front.URL+"/users/a%2Fb;x/inbox?b=%20&a=1;c", strings.NewReader(`{"type":"Create"}`))
	req.Host = "Social.Example"
	resp, err := rg.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got != "Social.Example /users/a%2Fb;x/inbox?b=%20&a=1;c" || string(gotBody) != `{"type":"Create"}` {
		t.Fatalf("backend saw %q body %q", got, gotBody)
	}
	rg.do("GET", "/users/a%2Fb;x?b=%20&a=1;c", "Host: Social.Example")
	if got != "Social.Example /users/a%2Fb;x?b=%20&a=1;c" {
		t.Fatalf("backend saw %q", got)
	}
}

// TestWebsocketUpgradePassesUntouched: an upgrade is never looked up,
// stored or given a Cache-Status.
func TestWebsocketUpgradePassesUntouched(t *testing.T) {
	rg := newRig(t, defaultCacheConfig(), fixed(200, "x", "Cache-Control: max-age=60"))
	resp, _ := rg.do("GET", "/p", "Upgrade: websocket", "Connection: Upgrade")
	resp2, _ := rg.do("GET", "/p", "Upgrade: websocket", "Connection: Upgrade")
	if rg.fetches.Load() != 2 || resp.Header.Get("Cache-Status") != "" || resp2.Header.Get("Cache-Status") != "" {
		t.Fatalf("fetches %d, Cache-Status %q", rg.fetches.Load(), resp.Header.Get("Cache-Status"))
	}
}

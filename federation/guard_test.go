package federation

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// TestFedifyDeliveriesReachBackendByteForByte: deliveries signed by
// Fedify in both signature formats pass, and the backend receives the
// body and the signed headers exactly as sent.
func TestFedifyDeliveriesReachBackendByteForByte(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) {
		f.Limit, f.DenyDomains = 100, []string{"spam.example"}
		f.Filters = []configs.Filter{{Name: "discord", Match: []string{"discord.gg/"}, Action: "drop"}}
	}), Options{})
	body := activity("real.example", "<p>hello \u00e9 <a href=\"https://real.example/@b\">@b</a></p>", `[{"type":"Mention","href":"https://real.example/users/b"}]`)
	paths := []string{"/inbox", "/users/alice/inbox", "/actor/inbox"}
	var reqs []signReq
	for _, spec := range []string{specCavage, specRFC9421} {
		for _, p := range paths {
			reqs = append(reqs, signReq{URL: e.URL + p, Body: body, KeyID: "https://real.example/users/a#main-key", Spec: spec})
		}
	}
	hs := fedifySign(t, reqs...)
	for i, h := range hs {
		resp := e.post(t, paths[i%len(paths)], h, body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s %s: status %d, want the backend's 202; log:\n%s", reqs[i].Spec, paths[i%len(paths)], resp.StatusCode, e.logs)
		}
	}
	got := e.be.requests()
	if len(got) != len(hs) {
		t.Fatalf("backend saw %d deliveries, want %d", len(got), len(hs))
	}
	for i, g := range got {
		if !bytes.Equal(g.Body, []byte(body)) {
			t.Errorf("delivery %d: body changed:\n got %q\nwant %q", i, g.Body, body)
		}
		for _, k := range []string{"Signature", "Signature-Input", "Digest", "Content-Digest", "Date"} {
			if g.Header.Get(k) != hs[i].Get(k) {
				t.Errorf("delivery %d: %s changed: %q, signed %q", i, k, g.Header.Get(k), hs[i].Get(k))
			}
		}
	}
}

// TestDeniedDomainNeverReachesBackend: deny_domains refuses with 403 by
// the key id's host, in either format, exact or *., whatever its case,
// port or trailing dot.
func TestDeniedDomainNeverReachesBackend(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) {
		f.DenyDomains = []string{"spam.example", "*.worse.example"}
	}), Options{})
	body := activity("spam.example", "buy", "")
	signed := fedifySign(t,
		signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://spam.example/users/a#main-key", Spec: specCavage},
		signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://spam.example/users/a#main-key", Spec: specRFC9421},
		signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://a.worse.example/actor#main-key", Spec: specRFC9421},
	)
	for i, h := range signed {
		if resp := e.post(t, "/inbox", h, body); resp.StatusCode != http.StatusForbidden {
			t.Errorf("fedify delivery %d: status %d, want 403", i, resp.StatusCode)
		}
	}
	for _, c := range []struct {
		keyID string
		want  int
	}{
		{"https://SPAM.Example/users/a#main-key", 403},
		{"https://spam.example:8443/users/a#main-key", 403},
		{"https://spam.example./users/a#main-key", 403},
		{"acct:a@spam.example", 403},
		{"https://deep.a.worse.example/users/a", 403},
		{"https://worse.example/users/a", 202}, // *. covers the names below only
		{"https://notspam.example/users/a", 202},
		{"https://spam.example.evil/users/a", 202},
	} {
		if resp := e.post(t, "/inbox", cavageHeader(c.keyID), body); resp.StatusCode != c.want {
			t.Errorf("keyId %q: status %d, want %d", c.keyID, resp.StatusCode, c.want)
		}
	}
	if n := len(e.be.requests()); n != 3 {
		t.Errorf("backend saw %d deliveries, want the 3 allowed", n)
	}
	if !strings.Contains(e.logs.String(), `msg="federation delivery refused" domain=spam.example verdict=denied rule=deny_domains`) {
		t.Errorf("no canonical refusal line in the log:\n%s", e.logs)
	}
}

// TestNonInboxPostUntouched: a POST elsewhere is passed on unread, even
// signed by a denied domain, and its body streams through.
func TestNonInboxPostUntouched(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) {
		f.DenyDomains, f.RequireSignature, f.MaxBody = []string{"spam.example"}, true, 10
	}), Options{})
	body := strings.Repeat("x", 100)
	for _, p := range []string{"/api/v1/statuses", "/users/a/outbox", "/inboxes", "/users/a/b/inbox"} {
		if resp := e.post(t, p, cavageHeader("https://spam.example/users/a"), body); resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST %s: status %d, want the backend's 202", p, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/inbox", nil)
	req.Header = cavageHeader("https://spam.example/users/a")
	if resp, err := e.Client().Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Errorf("GET /inbox: %v %v, want the backend's 202", resp, err)
	}
	for _, g := range e.be.requests() {
		if g.Method == http.MethodPost && string(g.Body) != body {
			t.Errorf("%s: body changed", g.Path)
		}
	}
}

// TestInboxSpellingsAreGuarded: the spellings the backend routes to an
// inbox are guarded too (a walk-around with //inbox, /Inbox/, /inbox.json).
func TestInboxSpellingsAreGuarded(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) { f.DenyDomains = []string{"spam.example"} }), Options{})
	for _, p := range []string{"//inbox", "/Inbox/", "/inbox.json", "/users/Alice/inbox/", "/users//alice//inbox", "/./inbox", "/ACTOR/INBOX"} {
		if resp := e.post(t, p, cavageHeader("https://spam.example/users/a"), "{}"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s: status %d, want 403", p, resp.StatusCode)
		}
	}
}

// TestSignatureAttacks: what a forger can try with the headers.
func TestSignatureAttacks(t *testing.T) {
	for _, c := range []struct {
		name    string
		require bool
		h       http.Header
		want    int
	}{
		{"unsigned passes by default", false, http.Header{}, 202},
		{"unsigned refused with require_signature", true, http.Header{}, 401},
		{"malformed passes by default", false, http.Header{"Signature": {`keyId="https://spam.example/a`}}, 202},
		{"malformed refused with require_signature", true, http.Header{"Signature": {`keyId=`}}, 401},
		{"no keyId refused with require_signature", true, http.Header{"Signature": {`algorithm="rsa-sha256"`}}, 401},
		{"two keyIds naming two hosts", false, http.Header{"Signature": {`keyId="https://ok.example/a",keyId="https://spam.example/a"`}}, 401},
		{"two Signature lines naming two hosts", false, http.Header{"Signature": {`keyId="https://ok.example/a"`, `keyId="https://spam.example/a"`}}, 401},
		{"two labels naming two hosts", false, http.Header{"Signature-Input": {`a=("@method");keyid="https://ok.example/a", b=("@method");keyid="https://spam.example/a"`}}, 401},
		{"a label repeated with another host", false, http.Header{"Signature-Input": {`a=("@method");keyid="https://ok.example/a"`, `a=("@method");keyid="https://spam.example/a"`}}, 401},
		{"userinfo hides the host", true, http.Header{"Signature": {`keyId="https://ok.example@spam.example/a"`}}, 401},
		{"backslash hides the host", true, http.Header{"Signature": {`keyId="https://ok.example\\@spam.example/a"`}}, 401},
		{"old node-http-signature prefix", false, http.Header{"Signature": {`Signature keyId="https://spam.example/a",signature="x"`}}, 403},
		{"Authorization: Signature (Pleroma reads it)", false, http.Header{"Authorization": {`Signature keyId="https://spam.example/a",signature="x"`}}, 403},
		{"cavage spaces around = and ,", false, http.Header{"Signature": {` keyId = "https://spam.example/a" ,  algorithm = "hs2019"`}}, 403},
		{"rfc9421 keyid", false, http.Header{"Signature-Input": {`sig1=("@method" "@target-uri");created=1;keyid="https://spam.example/a"`}}, 403},
		{"rfc9421 takes precedence over a cavage-looking Signature", false, http.Header{"Signature-Input": {`sig1=("@method");keyid="https://spam.example/a"`}, "Signature": {`keyId="https://ok.example/a"`}}, 403},
		{"rfc9421 keyid not a string", true, http.Header{"Signature-Input": {`sig1=("@method");keyid=spam`}}, 401},
		{"rfc9421 not a dictionary", true, http.Header{"Signature-Input": {`sig1=("@method";keyid="https://x.example/"`}}, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startEdge(t, testConfig(func(f *configs.Federation) {
				f.DenyDomains, f.RequireSignature, f.CheckDigest = []string{"spam.example"}, c.require, false
			}), Options{})
			if resp := e.post(t, "/inbox", c.h, "{}"); resp.StatusCode != c.want {
				t.Errorf("status %d, want %d; log:\n%s", resp.StatusCode, c.want, e.logs)
			}
		})
	}
}

// TestClockWindow: a signature whose Date or created is further off than
// max_clock_skew is 401, in either format (signed by Fedify at that time).
func TestClockWindow(t *testing.T) {
	e := startEdge(t, testConfig(nil), Options{})
	now := time.Now()
	e.clock.Set(now)
	body := activity("real.example", "hi", "")
	var reqs []signReq
	offsets := []time.Duration{-2 * time.Hour, -50 * time.Minute, 50 * time.Minute, 2 * time.Hour}
	for _, spec := range []string{specCavage, specRFC9421} {
		for _, off := range offsets {
			reqs = append(reqs, signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://real.example/users/a#main-key", Spec: spec, Time: now.Add(off).Unix()})
		}
	}
	for i, h := range fedifySign(t, reqs...) {
		off := offsets[i%len(offsets)]
		want := http.StatusAccepted
		if off.Abs() > time.Hour {
			want = http.StatusUnauthorized
		}
		if resp := e.post(t, "/inbox", h, body); resp.StatusCode != want {
			t.Errorf("%s signed %v from now: status %d, want %d", reqs[i].Spec, off, resp.StatusCode, want)
		}
	}
	// the window moves with the injected clock
	h := fedifySign(t, signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://real.example/users/a", Spec: specCavage, Time: now.Unix()})[0]
	e.clock.Set(now.Add(61 * time.Minute))
	if resp := e.post(t, "/inbox", h, body); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a replay 61 minutes later: status %d, want 401", resp.StatusCode)
	}
	for _, bad := range []http.Header{
		{"Date": {"yesterday"}},
		{"Date": {now.UTC().Format(http.TimeFormat), now.UTC().Format(http.TimeFormat)}},
	} {
		hh := cavageHeader("https://real.example/users/a")
		for k, v := range bad {
			hh[k] = v
		}
		e.clock.Set(now)
		if resp := e.post(t, "/inbox", hh, body); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Date %q: status %d, want 401", bad["Date"], resp.StatusCode)
		}
	}
}

// TestMaxBody: a delivery over max_body is 413, whether its length is
// declared or it streams, and never reaches the backend.
func TestMaxBody(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) { f.MaxBody = 1000 }), Options{})
	if resp := e.post(t, "/inbox", http.Header{}, strings.Repeat("a", 1001)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("declared length: status %d, want 413", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/inbox", struct{ *strings.Reader }{strings.NewReader(strings.Repeat("a", 5000))})
	req.ContentLength = -1
	resp, err := e.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: %v %v, want 413", resp, err)
	}
	if resp := e.post(t, "/inbox", http.Header{}, strings.Repeat("a", 1000)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("exactly max_body: status %d, want 202", resp.StatusCode)
	}
	if n := len(e.be.requests()); n != 1 {
		t.Errorf("backend saw %d deliveries, want 1", n)
	}
}

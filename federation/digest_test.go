package federation

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/fedigate/fedigate/configs"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestDigests: Digest (SHA-256) and Content-Digest (sha-256, sha-512)
// are checked against the body; a mismatch or a digest header that does
// not parse is 400 and never reaches the backend.
func TestDigests(t *testing.T) {
	body := activity("real.example", "hello", "")
	s256, s512 := sha256.Sum256([]byte(body)), sha512.Sum512([]byte(body))
	w256, w512 := sha256.Sum256([]byte(body+" ")), sha512.Sum512([]byte(body+" "))
	rows := []struct {
		name string
		h    http.Header
		want int
	}{
		{"Digest SHA-256 right", http.Header{"Digest": {"SHA-256=" + b64(s256[:])}}, 202},
		{"Digest sha-256 lower case right", http.Header{"Digest": {"sha-256=" + b64(s256[:])}}, 202},
		{"Digest SHA-256 wrong", http.Header{"Digest": {"SHA-256=" + b64(w256[:])}}, 400},
		{"Digest SHA-512 wrong", http.Header{"Digest": {"SHA-512=" + b64(w512[:])}}, 400},
		{"Digest list, second wrong", http.Header{"Digest": {"SHA-256=" + b64(s256[:]) + ",SHA-512=" + b64(w512[:])}}, 400},
		{"Digest not base64", http.Header{"Digest": {"SHA-256=!!!"}}, 400},
		{"Digest without =", http.Header{"Digest": {"SHA-256"}}, 400},
		{"Digest unknown algorithm left to the backend", http.Header{"Digest": {"MD5=abc"}}, 202},
		{"Content-Digest sha-256 right", http.Header{"Content-Digest": {"sha-256=:" + b64(s256[:]) + ":"}}, 202},
		{"Content-Digest sha-512 right", http.Header{"Content-Digest": {"sha-512=:" + b64(s512[:]) + ":"}}, 202},
		{"Content-Digest both right", http.Header{"Content-Digest": {"sha-512=:" + b64(s512[:]) + ":, sha-256=:" + b64(s256[:]) + ":"}}, 202},
		{"Content-Digest sha-256 wrong", http.Header{"Content-Digest": {"sha-256=:" + b64(w256[:]) + ":"}}, 400},
		{"Content-Digest sha-512 wrong", http.Header{"Content-Digest": {"sha-512=:" + b64(w512[:]) + ":"}}, 400},
		{"Content-Digest right then wrong on a second line", http.Header{"Content-Digest": {"sha-256=:" + b64(s256[:]) + ":", "sha-512=:" + b64(w512[:]) + ":"}}, 400},
		{"Content-Digest a string, not bytes", http.Header{"Content-Digest": {`sha-256="` + b64(s256[:]) + `"`}}, 400},
		{"Content-Digest not a dictionary", http.Header{"Content-Digest": {"sha-256=:" + b64(s256[:])}}, 400},
		{"Content-Digest right, Digest wrong", http.Header{"Content-Digest": {"sha-256=:" + b64(s256[:]) + ":"}, "Digest": {"SHA-256=" + b64(w256[:])}}, 400},
		{"no digest left to the backend", http.Header{}, 202},
	}
	e := startEdge(t, testConfig(nil), Options{})
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if resp := e.post(t, "/inbox", r.h, body); resp.StatusCode != r.want {
				t.Errorf("status %d, want %d", resp.StatusCode, r.want)
			}
		})
	}
	off := startEdge(t, testConfig(func(f *configs.Federation) { f.CheckDigest = false }), Options{})
	if resp := off.post(t, "/inbox", http.Header{"Digest": {"SHA-256=" + b64(w256[:])}}, body); resp.StatusCode != 202 {
		t.Errorf("check_digest = false: status %d, want 202", resp.StatusCode)
	}
}

// TestFedifyDigestTampered: a Fedify-signed delivery whose body was
// changed on the way is 400 in both formats.
func TestFedifyDigestTampered(t *testing.T) {
	e := startEdge(t, testConfig(nil), Options{})
	body := activity("real.example", "hello", "")
	hs := fedifySign(t,
		signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://real.example/users/a", Spec: specCavage},
		signReq{URL: e.URL + "/inbox", Body: body, KeyID: "https://real.example/users/a", Spec: specRFC9421})
	for i, h := range hs {
		if resp := e.post(t, "/inbox", h, body+" "); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("delivery %d: status %d, want 400", i, resp.StatusCode)
		}
	}
	if n := len(e.be.requests()); n != 0 {
		t.Errorf("backend saw %d tampered deliveries", n)
	}
}

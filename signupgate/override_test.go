package signupgate

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// postAuth sends POST /auth with body (of type ct, none when "") and
// header pairs through the gate, with no pass, and returns the status and
// the body the backend read (nil when it was not reached).
func postAuth(t *testing.T, ct, body string, header ...string) (int, []byte) {
	t.Helper()
	g, _ := newGuard(t, testConfig(), Options{})
	var got []byte
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		if got == nil {
			got = []byte{}
		}
		w.WriteHeader(http.StatusFound)
	}))
	r := httptest.NewRequest(http.MethodPost, "https://social.test/auth", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	r.RemoteAddr = alice
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, got
}

const formType = "application/x-www-form-urlencoded"

// Mastodon's account settings form (password and e-mail change) posts to
// /auth with "_method=put": it is not a sign-up, needs no pass, and its
// body reaches the backend byte for byte.
func TestAccountSettingsFormNeedsNoPass(t *testing.T) {
	for _, tc := range []struct{ ct, body string }{
		{formType, "_method=put&authenticity_token=abc&user%5Bpassword%5D=n3w&user%5Bcurrent_password%5D=old"},
		{formType + "; charset=UTF-8", "_method=patch&user[email]=a%40b.test"},
		{"", "_method=PUT&x=1"},
		{formType, "%5Fmethod=put"},
		{formType, "_method=put&_method=put"},
		{formType, strings.Repeat("x", 60<<10) + "&_method=put"},
	} {
		code, got := postAuth(t, tc.ct, tc.body)
		if code != http.StatusFound || string(got) != tc.body {
			t.Errorf("%q %.40q: %d, backend read %.40q", tc.ct, tc.body, code, got)
		}
	}
	code, _ := postAuth(t, "application/json", `{"user":{}}`, "X-HTTP-Method-Override", "PUT")
	if code != http.StatusFound {
		t.Errorf("JSON with X-HTTP-Method-Override: PUT: %d", code)
	}
}

// A sign-up dressed so that the gate could read it as a PUT while the
// backend reads a POST is still a sign-up: every doubt needs a pass.
func TestAttackMethodOverrideAmbiguity(t *testing.T) {
	rows := []struct{ name, ct, body, header string }{
		{"no override", formType, "user[email]=a%40b.test", ""},
		{"override to POST", formType, "_method=post", ""},
		{"fields disagree", formType, "_method=put&_method=post", ""},
		{"rack nested name", formType, "_method=put&[_method]=post", ""},
		{"rack trailing bracket", formType, "_method=put&_method]=post", ""},
		{"rack space after separator", formType, "_method=put& _method=post", ""},
		{"rack 2 semicolon", formType, "_method=put;_method=post", ""},
		{"array", formType, "_method[]=put", ""},
		{"trailing space", formType, "_method=put+", ""},
		{"form wins over header", formType, "_method=post", "PUT"},
		{"text body not read by rack", "text/plain", "_method=put", ""},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nput\r\n--x--\r\n", ""},
		{"bad escape", formType, "_method=put&x=%zz", ""},
		{"too large", formType, "_method=put&" + strings.Repeat("x", 64<<10), ""},
		{"unknown method", formType, "_method=frobnicate", ""},
	}
	for _, row := range rows {
		var hdr []string
		if row.header != "" {
			hdr = []string{"X-HTTP-Method-Override", row.header}
		}
		code, got := postAuth(t, row.ct, row.body, hdr...)
		if code != http.StatusForbidden || got != nil {
			t.Errorf("%s: %d, backend reached: %v", row.name, code, got != nil)
		}
	}
	code, got := postAuth(t, "application/json", "{}", "X-HTTP-Method-Override", "PUT", "X-HTTP-Method-Override", "POST")
	if code != http.StatusForbidden || got != nil {
		t.Errorf("two override headers: %d", code)
	}
}

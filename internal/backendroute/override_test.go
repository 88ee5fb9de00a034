package backendroute

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const formType = "application/x-www-form-urlencoded"

func post(ct, body string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://social.test/auth", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	for _, h := range header {
		r.Header.Add("X-HTTP-Method-Override", h)
	}
	return r
}

func TestMethodOverride(t *testing.T) {
	rows := []struct {
		name, ct, body string
		header         []string
		want           Override
	}{
		{"settings form", formType, "_method=put&authenticity_token=abc&user%5Bpassword%5D=n3w", nil, Override{Method: "PUT"}},
		{"charset", formType + "; charset=UTF-8", "_method=patch", nil, Override{Method: "PATCH"}},
		{"no type", "", "_method=Delete", nil, Override{Method: "DELETE"}},
		{"escaped name", formType, "%5Fmethod=put", nil, Override{Method: "PUT"}},
		{"repeated alike", formType, "_method=put&_method=put", nil, Override{Method: "PUT"}},
		{"sign-up form", formType, "user%5Bemail%5D=a%40b.test", nil, Override{}},
		{"to POST", formType, "_method=post", nil, Override{}},
		{"unknown method", formType, "_method=frobnicate", nil, Override{}},
		{"AttackEmptyField", formType, "_method=", []string{"PUT"}, Override{Ambiguous: true}},
		{"AttackBareField", formType, "_method&x=1", []string{"PUT"}, Override{Ambiguous: true}},
		{"AttackEmptyMediaType", ";charset=utf-8", "_method=put", nil, Override{Ambiguous: true}},
		{"header", "application/json", `{"a":1}`, []string{"PATCH"}, Override{Method: "PATCH"}},
		{"field wins over header", formType, "_method=post", []string{"PUT"}, Override{}},
		{"text body is not read", "text/plain", "_method=put", nil, Override{}},
		{"AttackFieldsDisagree", formType, "_method=put&_method=post", nil, Override{Ambiguous: true}},
		{"AttackRackNestedName", formType, "_method=put&[_method]=post", nil, Override{Ambiguous: true}},
		{"AttackRackTrailingBracket", formType, "_method=put&_method]=post", nil, Override{Ambiguous: true}},
		{"AttackRackSpaceAfterSeparator", formType, "_method=put& _method=post", nil, Override{Ambiguous: true}},
		{"AttackRack2Semicolon", formType, "_method=put;_method=post", nil, Override{Ambiguous: true}},
		{"AttackArray", formType, "_method[]=put", nil, Override{Ambiguous: true}},
		{"AttackBadEscape", formType, "_method=put&x=%zz", nil, Override{Ambiguous: true}},
		{"AttackTooLarge", formType, "_method=put&" + strings.Repeat("x", maxOverrideForm), nil, Override{Ambiguous: true}},
		{"AttackMultipart", "multipart/form-data; boundary=x", "--x--", nil, Override{Ambiguous: true}},
		{"AttackTwoHeaders", "application/json", "{}", []string{"PUT", "POST"}, Override{Ambiguous: true}},
		{"AttackDotlessI", formType, "_method=l%C4%B1nk", nil, Override{Ambiguous: true}},
	}
	for _, row := range rows {
		r := post(row.ct, row.body, row.header...)
		if got := MethodOverride(r); got != row.want {
			t.Errorf("%s: %+v, want %+v", row.name, got, row.want)
		}
		if got, _ := io.ReadAll(r.Body); string(got) != row.body {
			t.Errorf("%s: the body came out as %.40q", row.name, got)
		}
	}
}

// rackMethod models how Rack 2's Rack::MethodOverride reads a url-encoded
// POST body and one override header: separators "&" and ";" with the
// spaces after them eaten, names normalised by normalize_params, the last
// value winning, the value upper-cased (Unicode-aware, as Ruby does). It
// answers "" when Rack would fail on the body.
func rackMethod(body, header string) string {
	var method *string
	for _, pair := range rackSeparator.Split(body, -1) {
		if pair == "" {
			continue
		}
		k, v, hasValue := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return ""
		}
		if m := rackName.FindStringSubmatch(k); m != nil && m[1] == "_method" {
			switch {
			case m[2] != "":
				v = "[nested]"
			case !hasValue: // nil: the header decides
				method = nil
				continue
			}
			method = &v
		}
	}
	if method == nil {
		if header == "" {
			return http.MethodPost
		}
		method = &header
	}
	switch up := strings.ToUpper(*method); up {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "LINK", "UNLINK":
		return up
	}
	return http.MethodPost
}

var (
	rackSeparator = regexp.MustCompile(`[&;] *`)
	rackName      = regexp.MustCompile(`\A[\[\]]*([^\[\]]+)\]*(.*)\z`)
)

// FuzzMethodOverride: what MethodOverride is sure of, Rack (modelled by
// rackMethod) agrees with; and the body always comes out unchanged.
func FuzzMethodOverride(f *testing.F) {
	for _, s := range []string{"_method=put", "_method=put&_method=post", "_method=put&[_method]=post", "_method=put& _method=post", "%5Fmethod=put", "_method=put;x", "a=1&_method=PATCH", "_method=LINK", "_method=p%75t", "_method="} {
		f.Add(s, "")
		f.Add(s, "PUT")
	}
	f.Fuzz(func(t *testing.T, body, header string) {
		var hdr []string
		if header != "" {
			hdr = []string{header}
		}
		r := post(formType, body, hdr...)
		o := MethodOverride(r)
		if rack := rackMethod(body, header); !o.Ambiguous && rack != "" {
			want := o.Method
			if want == "" {
				want = http.MethodPost
			}
			if rack != want {
				t.Fatalf("body %q, header %q: read as %+v; Rack reads %s", body, header, o, rack)
			}
		}
		if got, err := io.ReadAll(r.Body); err != nil || string(got) != body {
			t.Fatalf("body %q came out as %q (%v)", body, got, err)
		}
	})
}

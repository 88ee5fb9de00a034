package backendroute

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxOverrideForm is the largest form body read to find a "_method"
// field; Mastodon's account settings form is a few hundred bytes.
const maxOverrideForm = 64 << 10

// Override is how a backend routes a POST under a method override.
type Override struct {
	// Method is the method the backend routes the POST as ("PUT"), or ""
	// when it stays a POST.
	Method string
	// Ambiguous is set when the request could be read either way: Method
	// is then "", and a rule must assume the worst (the sign-up gate: a
	// POST; the rate limits: any method).
	Ambiguous bool
}

// MethodOverride reads the method override of a POST as Rails'
// Rack::MethodOverride (and Phoenix's Plug.MethodOverride) does: a
// "_method" field of the form, else the X-HTTP-Method-Override header. A
// POST /auth with "_method=put" is Mastodon's account settings form
// (password and e-mail change), routed as PUT /auth. A url-encoded body is
// read and put back on r, so the backend gets the same bytes.
//
// Rack reads the form of a POST whose type is url-encoded or missing (and
// multipart, which is not read here). Every doubt is Ambiguous: an empty
// media type, a body
// too large or unreadable, a field spelled so that Rack could read it as
// "_method" while Go does not ("[_method]", "_method]", " _method"),
// fields that disagree, a ";" (Rack 2 splits on it, Go refuses it), a
// multipart form, several headers, a value with non-ASCII letters (Ruby
// upper-cases "ı" to "I").
func MethodOverride(r *http.Request) Override {
	ct := r.Header["Content-Type"]
	form := len(ct) == 0 // Rack reads the form of a POST without a type
	switch {
	case len(ct) > 1:
		return Override{Ambiguous: true}
	case form:
	default:
		switch rackMediaType(ct[0]) {
		case "application/x-www-form-urlencoded":
			form = true
		case "multipart/form-data", "":
			// read by Rack but not here; or a type Rack 2 fails on
			return Override{Ambiguous: true}
		}
	}
	var field []string
	if form {
		body, ok := readForm(r)
		if !ok {
			return Override{Ambiguous: true}
		}
		if field, ok = methodField(body); !ok {
			return Override{Ambiguous: true}
		}
	}
	if len(field) == 0 { // no field: the header
		field = r.Header["X-Http-Method-Override"]
		if len(field) == 0 {
			return Override{}
		}
		if len(field) > 1 {
			return Override{Ambiguous: true}
		}
	}
	return overrideOf(field[0])
}

// overrideOf is the Override a "_method" value or header gives: Rack
// upper-cases it and takes it when it names one of these methods.
func overrideOf(v string) Override {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return Override{Ambiguous: true}
		}
	}
	switch m := strings.Map(asciiUpper, v); m {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "LINK", "UNLINK":
		return Override{Method: m}
	}
	return Override{}
}

func asciiUpper(c rune) rune {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// rackMediaType is the media type as Rack reads it: up to the first ";"
// or ",", trimmed, lower-cased.
func rackMediaType(ct string) string {
	if i := strings.IndexAny(ct, ";,"); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// readForm reads a body of at most maxOverrideForm bytes and puts it back
// on r, so the backend gets the same bytes; false when it is larger or
// could not be read (what was read is put back, before the rest).
func readForm(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOverrideForm+1))
	rest := io.Reader(r.Body)
	if err != nil {
		rest = errorReader{err}
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), r.Body}
	return body, err == nil && len(body) <= maxOverrideForm
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// methodField returns the values of the form's "_method" field; false
// when the form does not parse or names the field in a way two parsers
// could read differently, or when its values disagree.
func methodField(body []byte) ([]string, bool) {
	if bytes.IndexByte(body, ';') >= 0 {
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, false
	}
	for k := range form {
		if k != "_method" && strings.Contains(k, "_method") {
			return nil, false
		}
	}
	v := form["_method"]
	for _, x := range v {
		// "_method=" and a bare "_method" both come out "" here, but Rack
		// reads the first as "" (no override) and the second as absent
		// (the header decides)
		if x != v[0] || x == "" {
			return nil, false
		}
	}
	return v, true
}

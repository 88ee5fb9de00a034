package signupgate

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

// overridden reports whether a POST reaches the backend as another method:
// Rails' Rack::MethodOverride (and Phoenix's Plug.MethodOverride) turn
// POST /auth with a "_method=put" form field, or else an
// X-HTTP-Method-Override header, into PUT /auth. That is Mastodon's
// account settings form (password and e-mail change), not a sign-up, and
// must not need a pass. A url-encoded body is read and put back.
//
// Every doubt answers false, so the request is gated as a sign-up: a body
// too large, a field spelled so that Rack could read it as "_method" while
// Go does not ("[_method]", "_method]", " _method"), fields that disagree,
// a ";" (Rack 2 splits on it, Go refuses it), multipart forms, and
// bodies that do not parse. Rack reads the form of a POST whose type is
// url-encoded or missing; any other type is not read, so only the header
// counts.
func overridden(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	var media string
	switch len(ct) {
	case 0:
	case 1:
		media = rackMediaType(ct[0])
	default:
		return false
	}
	var field []string
	if media == "" || media == "application/x-www-form-urlencoded" {
		body, ok := readForm(r)
		if !ok {
			return false
		}
		if field, ok = methodField(body); !ok {
			return false
		}
	} else if media == "multipart/form-data" {
		return false // Rack reads it; the gate does not
	}
	if len(field) == 0 { // no field: the header, when there is exactly one
		field = r.Header["X-Http-Method-Override"]
		if len(field) != 1 {
			return false
		}
	}
	return overrideMethod(field[0])
}

// overrideMethod reports whether v names a method Rack::MethodOverride
// turns a POST into. Rack upper-cases v (Unicode-aware, so it may also
// take spellings with non-ASCII letters, which this gates as a sign-up).
func overrideMethod(v string) bool {
	switch strings.Map(asciiUpper, v) {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "LINK", "UNLINK":
		return true
	}
	return false
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
	rest := r.Body
	if err != nil {
		rest = io.NopCloser(errorReader{err})
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
	for _, x := range v[min(1, len(v)):] {
		if x != v[0] {
			return nil, false
		}
	}
	return v, true
}

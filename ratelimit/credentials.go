package ratelimit

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/fedigate/fedigate/internal/backendroute"
)

// signedIn reports whether r carries credentials the backend would take,
// for unauthenticated rules: a non-empty Authorization header, a
// session cookie, an access_token or bearer_token parameter in the query
// or a url-encoded form (Doorkeeper's from_bearer_authorization,
// from_access_token_param and from_bearer_param, as Mastodon configures
// it), and on the streaming route a Sec-WebSocket-Protocol (where
// Mastodon's streaming server reads the token of a browser's websocket).
// The edge cannot tell a valid token from a made-up one; the backend's
// own limits still count those. Without credentials in the headers or
// query, a small url-encoded form body is read (and put back).
func (l *Limiter) signedIn(r *http.Request) bool {
	h := r.Header
	if authenticated(h) || hasTokenParam(r.URL.RawQuery) {
		return true
	}
	if l.opts.Streaming != nil && nonEmpty(h["Sec-Websocket-Protocol"]) && l.opts.Streaming(r) {
		return true
	}
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	return hasTokenParam(string(backendroute.FormBody(r)))
}

// authenticated reports whether the headers carry credentials: a
// non-empty Authorization header or a non-empty session cookie. It does
// not allocate.
func authenticated(h http.Header) bool {
	if nonEmpty(h["Authorization"]) {
		return true
	}
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || strings.TrimSpace(val) == "" {
				continue
			}
			name = strings.TrimSpace(name)
			// the session cookies of Mastodon and of Pleroma/Akkoma
			for _, s := range [...]string{"_session_id", "_mastodon_session", "__Host-pleroma_key", "pleroma_key"} {
				if name == s {
					return true
				}
			}
		}
	}
	return false
}

func nonEmpty(vals []string) bool {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

// hasTokenParam reports whether a query or url-encoded form names a
// non-empty access_token or bearer_token. Fields are split on "&" and
// ";" (Rack 2 splits on both) and names are percent-decoded as Rack
// decodes them; it allocates only for a name with an escape.
func hasTokenParam(q string) bool {
	for q != "" {
		var field string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			field, q = q[:i], q[i+1:]
		} else {
			field, q = q, ""
		}
		name, val, ok := strings.Cut(field, "=")
		if !ok || val == "" {
			continue
		}
		if strings.ContainsAny(name, "%+") {
			if n, err := url.QueryUnescape(name); err == nil {
				name = n
			}
		}
		if name == "access_token" || name == "bearer_token" {
			return true
		}
	}
	return false
}

// Package backendroute owns what the edge's rules need to know of how
// the backends route a request, so that a rule matches what the backend
// will do rather than how the request is spelled:
//
//   - which spellings of a path they route alike: Mastodon's Rails router
//     squeezes repeated slashes, drops a trailing one and reads a suffix
//     such as ".json" as the response format; Pleroma's and Akkoma's
//     Phoenix router skips empty segments (Canonical, WithoutFormat);
//   - which method a POST becomes under a method override: a "_method"
//     form field or an X-HTTP-Method-Override header, read by
//     Rack::MethodOverride and Plug.MethodOverride (MethodOverride).
//
// A rule that matched only the spelling it names could be walked around
// with "/auth/", "//auth" or "/auth.json"; the rate limits and the sign-up
// gate match through this package instead. The request sent to the
// backend is never changed (inbox deliveries are signed over it).
package backendroute

import (
	"path"
	"strings"
)

// Canonical maps the spellings a backend routes alike onto one: repeated
// slashes, a trailing slash, "." and ".." segments, and ASCII letter case
// (matching more than the backend would is the safe side for a rule).
// A path that is already canonical is returned as is, without allocating.
func Canonical(p string) string {
	if IsCanonical(p) {
		return p
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return LowerASCII(path.Clean(p))
}

// IsCanonical reports whether Canonical(p) == p.
func IsCanonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 'A' && c <= 'Z' {
			return false
		}
		if c == '/' && (strings.HasPrefix(p[i+1:], "/") || isDotSegment(p[i+1:])) {
			return false
		}
	}
	return true
}

// isDotSegment reports whether rest starts with a "." or ".." segment.
func isDotSegment(rest string) bool {
	seg, _, _ := strings.Cut(rest, "/")
	return seg == "." || seg == ".."
}

// WithoutFormat returns the canonical path p without the format suffix of
// its last segment: from the first "." on, as Rails reads "/auth.json" as
// "/auth" answered in JSON. A last segment that starts with "." (such as
// "/.well-known") has no format. It does not allocate.
func WithoutFormat(p string) string {
	last := p[strings.LastIndexByte(p, '/')+1:]
	if i := strings.IndexByte(last, '.'); i > 0 {
		return p[:len(p)-len(last)+i]
	}
	return p
}

// LowerASCII folds A-Z only: the backends route by bytes, and Unicode
// folding would map other letters (the Kelvin sign) onto ASCII ones.
func LowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

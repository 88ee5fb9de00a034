package cache

import (
	"errors"
	"strings"
	"time"
)

// Directives are a parsed Cache-Control field (RFC 9111 §5.2), request or
// response. A delta-seconds value is kept as a duration; -1 = absent.
type Directives struct {
	MaxAge, SMaxAge, MinFresh, MaxStale time.Duration
	StaleWhileRevalidate, StaleIfError  time.Duration
	// MaxStaleAny: max-stale without a value (any staleness).
	MaxStaleAny                                     bool
	NoStore                                         bool
	NoCache                                         bool     // unqualified no-cache
	NoCacheHdrs                                     []string // no-cache="a, b": the named fields
	Private                                         bool     // unqualified private
	PrivateHdrs                                     []string // private="a, b": the named fields
	Public                                          bool
	MustRevalidate, ProxyRevalidate, MustUnderstand bool
	OnlyIfCached, NoTransform, Immutable            bool
}

// errMalformed marks a Cache-Control the cache does not act on: the answer
// passes through unstored, a request bypasses the cache.
var errMalformed = errors.New("malformed Cache-Control")

// maxDelta is the largest delta-seconds kept (RFC 9111 §1.2.2: 2^31).
const maxDelta = 2147483648 * time.Second

func noDirectives() Directives {
	return Directives{MaxAge: -1, SMaxAge: -1, MinFresh: -1, MaxStale: -1, StaleWhileRevalidate: -1, StaleIfError: -1}
}

// ParseCacheControl parses every line of a Cache-Control field. An
// unknown directive is ignored (§5.2.3); a known one with a bad or
// conflicting value, a stray character or an unterminated quote makes the
// whole field malformed.
func ParseCacheControl(lines []string) (Directives, error) {
	d := noDirectives()
	for _, line := range lines {
		for s := line; ; {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			i := 0
			for i < len(s) && isTokenChar(s[i]) {
				i++
			}
			if i == 0 {
				return d, errMalformed
			}
			name := strings.ToLower(s[:i])
			s = strings.TrimLeft(s[i:], " \t")
			var val string
			hasVal := false
			if s != "" && s[0] == '=' {
				hasVal = true
				s = strings.TrimLeft(s[1:], " \t")
				var ok bool
				if val, s, ok = parseValue(s); !ok {
					return d, errMalformed
				}
				s = strings.TrimLeft(s, " \t")
			}
			if s != "" && s[0] != ',' {
				return d, errMalformed
			}
			if err := d.set(name, val, hasVal); err != nil {
				return d, err
			}
		}
	}
	return d, nil
}

// parseValue reads a token or a quoted string at the start of s.
func parseValue(s string) (val, rest string, ok bool) {
	if s != "" && s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; c {
			case '"':
				return b.String(), s[i+1:], true
			case '\\':
				if i+1 == len(s) {
					return "", "", false
				}
				i++
				b.WriteByte(s[i])
			default:
				if c < 0x20 && c != '\t' || c == 0x7f {
					return "", "", false
				}
				b.WriteByte(c)
			}
		}
		return "", "", false
	}
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	return s[:i], s[i:], true
}

func (d *Directives) set(name, val string, hasVal bool) error {
	delta := func(dst *time.Duration) error {
		if !hasVal {
			return errMalformed
		}
		v, ok := parseDelta(val)
		if !ok || (*dst >= 0 && *dst != v) {
			return errMalformed // a bad value, or two that disagree (§4.2.1)
		}
		*dst = v
		return nil
	}
	flag := func(dst *bool) error {
		if hasVal {
			return errMalformed
		}
		*dst = true
		return nil
	}
	switch name {
	case "max-age":
		return delta(&d.MaxAge)
	case "s-maxage":
		return delta(&d.SMaxAge)
	case "min-fresh":
		return delta(&d.MinFresh)
	case "stale-while-revalidate":
		return delta(&d.StaleWhileRevalidate)
	case "stale-if-error":
		return delta(&d.StaleIfError)
	case "max-stale":
		if !hasVal {
			d.MaxStaleAny = true
			return nil
		}
		return delta(&d.MaxStale)
	case "no-store":
		return flag(&d.NoStore)
	case "public":
		return flag(&d.Public)
	case "must-revalidate":
		return flag(&d.MustRevalidate)
	case "proxy-revalidate":
		return flag(&d.ProxyRevalidate)
	case "must-understand":
		return flag(&d.MustUnderstand)
	case "only-if-cached":
		return flag(&d.OnlyIfCached)
	case "no-transform":
		return flag(&d.NoTransform)
	case "immutable":
		return flag(&d.Immutable)
	case "no-cache", "private":
		all, hdrs := &d.NoCache, &d.NoCacheHdrs
		if name == "private" {
			all, hdrs = &d.Private, &d.PrivateHdrs
		}
		if !hasVal {
			*all = true
			return nil
		}
		for f := range strings.SplitSeq(val, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if !validFieldName(f) {
				return errMalformed
			}
			*hdrs = append(*hdrs, canonicalField(f))
		}
		return nil
	}
	return nil // an extension directive: ignored
}

// parseDelta reads delta-seconds: digits only; a value past 2^31 is 2^31.
func parseDelta(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < int64(maxDelta/time.Second) {
			n = n*10 + int64(c-'0')
		}
	}
	if n > int64(maxDelta/time.Second) {
		n = int64(maxDelta / time.Second)
	}
	return time.Duration(n) * time.Second, true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

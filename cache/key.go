package cache

import (
	"net/http"
	"strings"
)

// The keys. The primary key is scheme, host (lower case, default port
// dropped) and the request target exactly as the backend receives it
// (path as sent, raw query); nothing else of the path is read, so a path
// ending ".css" is keyed like any other (no cache deception). The
// secondary key is, for each field the stored answer's Vary names, the
// request's value: absent and empty told apart, list members trimmed,
// and with Accept normalised (presets) to the classes the backend tells
// apart.

// appendPrimaryKey appends the primary key of r to dst; false when r has
// no key (a host that could blur the key's parts, or no origin-form path).
func appendPrimaryKey(dst []byte, r *http.Request) ([]byte, bool) {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return appendKey(dst, scheme, r.Host, r.URL.EscapedPath(), r.URL.RawQuery, r.URL.ForceQuery)
}

func appendKey(dst []byte, scheme, host, path, query string, forceQuery bool) ([]byte, bool) {
	if host == "" || !strings.HasPrefix(path, "/") {
		return dst, false
	}
	switch {
	case scheme == "https://" && strings.HasSuffix(host, ":443"):
		host = host[:len(host)-4]
	case scheme == "http://" && strings.HasSuffix(host, ":80"):
		host = host[:len(host)-3]
	}
	dst = append(dst, scheme...)
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c == '/' || c == '?' || c == '#' || c == '\\' || c <= ' ' || c >= 0x7f:
			return dst, false
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, path...)
	if query != "" || forceQuery {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst, true
}

// appendSecondaryKey appends, for each name in vary, the request's value.
func appendSecondaryKey(dst []byte, vary []string, h http.Header, normalize bool) []byte {
	for _, name := range vary {
		dst = append(dst, name...)
		vv, ok := h[name]
		if !ok {
			dst = append(dst, '!', '\n')
			continue
		}
		dst = append(dst, ':')
		switch {
		case normalize && name == "Accept":
			dst = appendAcceptClass(dst, vv)
		case normalize && name == "Accept-Encoding":
			if acceptsGzip(vv) {
				dst = append(dst, "\x00gzip"...)
			} else {
				dst = append(dst, "\x00identity"...)
			}
		default:
			dst = appendList(dst, vv)
		}
		dst = append(dst, '\n')
	}
	return dst
}

// appendList appends the field's lines as one list, members trimmed.
func appendList(dst []byte, vv []string) []byte {
	first := true
	for _, line := range vv {
		for line != "" {
			m := line
			if i := strings.IndexByte(line, ','); i >= 0 {
				m, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			m = strings.Trim(m, " \t")
			if m == "" {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, m...)
		}
	}
	return dst
}

// Accept classes. A value is put in a class only when every backend the
// presets serve answers every member of the class alike: ActivityPub JSON
// (only activity+json / ld+json ranges), JSON (only application/json),
// HTML (text/html first, at full weight). Any other value is kept as it
// is ("application/json, */*" is HTML to Rails, so it is not JSON).
func appendAcceptClass(dst []byte, vv []string) []byte {
	ap, js, n := true, true, 0
	htmlFirst := false
	for _, line := range vv {
		for m := range strings.SplitSeq(line, ",") {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			typ, params, _ := strings.Cut(m, ";")
			typ = strings.ToLower(strings.TrimSpace(typ))
			if n == 0 && typ == "text/html" && fullWeight(params) {
				htmlFirst = true
			}
			n++
			switch typ {
			case "application/activity+json", "application/ld+json":
				js = false
			case "application/json":
				ap = false
			default:
				ap, js = false, false
			}
		}
	}
	switch {
	case n > 0 && ap:
		return append(dst, "\x00activitypub"...)
	case n > 0 && js:
		return append(dst, "\x00json"...)
	case htmlFirst:
		return append(dst, "\x00html"...)
	}
	return appendList(dst, vv)
}

// fullWeight: the media range's parameters hold no q below 1.
func fullWeight(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimSpace(v)
			return v == "1" || strings.Trim(strings.TrimPrefix(v, "1."), "0") == "" && strings.HasPrefix(v, "1")
		}
	}
	return true
}

// acceptsGzip reads Accept-Encoding as the edge's gzip does: gzip (or
// "*") listed, not at q=0.
func acceptsGzip(vv []string) bool {
	for _, line := range vv {
		for m := range strings.SplitSeq(line, ",") {
			name, params, _ := strings.Cut(m, ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") {
				continue
			}
			_, q, _ := strings.Cut(params, "=")
			q = strings.TrimSpace(q)
			return q == "" || strings.Trim(q, "0.") != ""
		}
	}
	return false
}

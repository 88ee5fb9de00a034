package federation

import (
	"net/http"
	"strings"

	"github.com/fedigate/fedigate/internal/backendroute"
)

// claim is what a delivery's signature headers say about its sender,
// read without verifying anything (the backend verifies).
type claim struct {
	status  sigStatus
	domain  string // the key id's host, lower case, no port; when status is sigOK
	created int64  // the signature's created (Unix seconds); 0 = absent
	expires int64  // its expires; 0 = absent
}

type sigStatus uint8

const (
	sigNone      sigStatus = iota // no signature header
	sigOK                         // one sending domain
	sigMalformed                  // a header that does not parse, or a key id without a host
	sigAmbiguous                  // key ids naming different hosts: two parsers could read different senders
)

// readClaim reads the sender of a delivery: with Signature-Input (RFC
// 9421) the keyid of its signatures, else the keyId of a draft-cavage
// Signature (or an "Authorization: Signature" header, which Pleroma and
// Akkoma also read). Every key id a header holds counts, a repeated
// parameter or label too: when they name different hosts the claim is
// ambiguous.
func readClaim(h http.Header) claim {
	if lines := h["Signature-Input"]; len(lines) > 0 {
		return readRFC9421(lines)
	}
	if lines := h["Signature"]; len(lines) > 0 {
		return readCavage(lines)
	}
	for _, a := range h["Authorization"] {
		if rest, ok := strings.CutPrefix(a, "Signature "); ok {
			return readCavage([]string{rest})
		}
	}
	return claim{}
}

// merge adds one key id to c.
func (c *claim) merge(keyID string) {
	if c.status == sigMalformed || c.status == sigAmbiguous {
		return
	}
	host, ok := keyIDHost(keyID)
	switch {
	case !ok:
		c.status = sigMalformed
	case c.status == sigNone:
		c.status, c.domain = sigOK, host
	case !strings.EqualFold(c.domain, host):
		c.status = sigAmbiguous
	}
}

// finish lower-cases the domain (allocating only when it has upper case).
func (c *claim) finish() claim {
	if c.status == sigOK {
		c.domain = backendroute.LowerASCII(c.domain)
	} else {
		c.domain = ""
	}
	return *c
}

// readRFC9421 reads the keyid parameter of every signature in
// Signature-Input.
func readRFC9421(lines []string) claim {
	var c claim
	sawLabel := false
	for _, line := range lines {
		ok := sfDictionary(line, func(_ string, v sfItem, params string) {
			sawLabel = true
			if v.kind != sfInnerList {
				c.status = sigMalformed
				return
			}
			keyid := false
			sfEachParam(params, func(k string, pv sfItem) {
				switch {
				case k == "keyid" && pv.kind == sfString:
					keyid = true
					c.merge(pv.raw)
				case k == "keyid":
					c.status = sigMalformed
				case k == "created" && pv.kind == sfInteger:
					c.created = pv.num
				case k == "expires" && pv.kind == sfInteger:
					c.expires = pv.num
				case k == "created" || k == "expires":
					c.status = sigMalformed
				}
			})
			if !keyid {
				c.status = sigMalformed
			}
		})
		if !ok {
			return claim{status: sigMalformed}
		}
	}
	if !sawLabel {
		return claim{status: sigMalformed}
	}
	return c.finish()
}

// readCavage reads a draft-cavage Signature header as Mastodon's
// SignatureParser does: comma-separated name=value parameters, the value
// a token or a quoted string, optional whitespace around "=" and ",",
// and an old node-http-signature "Signature " prefix ignored. Several
// header lines count as one joined with commas.
func readCavage(lines []string) claim {
	var c claim
	for _, line := range lines {
		line = strings.TrimPrefix(line, "Signature ")
		if !cavageParams(line, &c) {
			return claim{status: sigMalformed}
		}
	}
	if c.status == sigNone {
		return claim{status: sigMalformed} // signed, but no keyId
	}
	return c.finish()
}

// cavageParams parses one line's parameters into c.
func cavageParams(s string, c *claim) bool {
	i := 0
	ws := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	ws()
	if i == len(s) {
		return false
	}
	for {
		start := i
		for i < len(s) && isTChar(s[i]) {
			i++
		}
		name := s[start:i]
		if name == "" {
			return false
		}
		ws()
		if i == len(s) || s[i] != '=' {
			return false
		}
		i++
		ws()
		var val string
		if i < len(s) && s[i] == '"' {
			i++
			vs := i
			for {
				q := strings.IndexByte(s[i:], '"')
				if q < 0 {
					return false
				}
				bs := strings.IndexByte(s[i:i+q], '\\')
				if bs < 0 {
					i += q
					break
				}
				i += bs + 2 // the backslash and what it escapes
				if i > len(s) {
					return false
				}
			}
			val = s[vs:i]
			i++
		} else {
			vs := i
			for i < len(s) && isTChar(s[i]) {
				i++
			}
			if vs == i {
				return false
			}
			val = s[vs:i]
		}
		switch name {
		case "keyId":
			c.merge(val)
		case "created", "expires":
			n, ok := atoi(val)
			if !ok {
				return false
			}
			if name == "created" {
				c.created = n
			} else {
				c.expires = n
			}
		}
		ws()
		if i == len(s) {
			return true
		}
		if s[i] != ',' {
			return false
		}
		i++
		ws()
	}
}

// atoi reads a non-negative decimal of at most 15 digits.
func atoi(s string) (int64, bool) {
	if s == "" || len(s) > 15 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// keyIDHost returns the host of a key id: an http(s) URL
// ("https://host[:port]/users/a#main-key") or an acct: URI
// ("acct:a@host"), which Mastodon also resolves. A host must be a DNS
// name or an IPv4 address; a port is dropped; user information, percent
// escapes, backslashes and IPv6 literals make the key id malformed (two
// URL parsers could read different hosts from them).
func keyIDHost(id string) (string, bool) {
	var auth string
	switch {
	case hasPrefixFold(id, "https://"):
		auth = id[len("https://"):]
	case hasPrefixFold(id, "http://"):
		auth = id[len("http://"):]
	case hasPrefixFold(id, "acct:"):
		rest := id[len("acct:"):]
		at := strings.LastIndexByte(rest, '@')
		if at <= 0 {
			return "", false
		}
		auth = rest[at+1:]
		if strings.ContainsAny(auth, "/?#") {
			return "", false
		}
	default:
		return "", false
	}
	if end := strings.IndexAny(auth, "/?#"); end >= 0 {
		auth = auth[:end]
	}
	host := auth
	if colon := strings.IndexByte(auth, ':'); colon >= 0 {
		host = auth[:colon]
		port := auth[colon+1:]
		if len(port) > 5 {
			return "", false
		}
		for i := 0; i < len(port); i++ {
			if !isDigit(port[i]) {
				return "", false
			}
		}
	}
	host = strings.TrimSuffix(host, ".")
	if !validHost(host) {
		return "", false
	}
	return host, true
}

// validHost: dot-separated labels of letters, digits, '-' and '_', at
// most 253 bytes.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case isAlpha(c) || isDigit(c) || c == '_':
			label++
		case c == '-':
			if label == 0 || i+1 == len(h) || h[i+1] == '.' {
				return false
			}
			label++
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	return label > 0
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

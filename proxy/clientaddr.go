package proxy

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIPHeader is one of server.client_ip_headers, canonicalised at load.
type clientIPHeader struct {
	name string // canonical MIME header key
	xff  bool   // a comma-separated chain (X-Forwarded-For); else one address
}

// trust decides the client address of a request. It is built once from
// server.trusted_proxies and server.client_ip_headers and never changes.
type trust struct {
	proxies []netip.Prefix
	headers []clientIPHeader
}

func newTrust(proxies []netip.Prefix, headers []string) trust {
	t := trust{proxies: make([]netip.Prefix, 0, len(proxies))}
	for _, p := range proxies {
		t.proxies = append(t.proxies, p.Masked())
	}
	for _, h := range headers {
		name := http.CanonicalHeaderKey(strings.TrimSpace(h))
		t.headers = append(t.headers, clientIPHeader{name: name, xff: name == "X-Forwarded-For"})
	}
	return t
}

// trusted reports whether a is one of the trusted proxies.
func (t *trust) trusted(a netip.Addr) bool {
	for _, p := range t.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses the TCP (or QUIC) peer of r. An unparsable RemoteAddr
// gives the zero Addr, which is never trusted.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}
		}
		return a.WithZone("").Unmap()
	}
	return ap.Addr().WithZone("").Unmap()
}

// decide returns the client: the peer, unless the peer is trusted and the
// first configured header present holds a valid address. Garbage in that
// header falls back to the peer.
func (t *trust) decide(peer netip.Addr, h http.Header) netip.Addr {
	if !peer.IsValid() || !t.trusted(peer) {
		return peer
	}
	for _, ch := range t.headers {
		vals := h[ch.name]
		if len(vals) == 0 {
			continue
		}
		if ch.xff {
			if a, ok := t.fromForwardedFor(vals); ok {
				return a
			}
			return peer
		}
		if len(vals) != 1 {
			return peer // a repeated single-address header is not believed
		}
		if a, ok := parseClientIP(vals[0]); ok {
			return a
		}
		return peer
	}
	return peer
}

// fromForwardedFor walks X-Forwarded-For from the right and returns the
// first entry that is not a trusted proxy; when every entry is trusted,
// the left-most. Any unparsable entry on the way makes the chain worthless.
func (t *trust) fromForwardedFor(vals []string) (netip.Addr, bool) {
	var last netip.Addr
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for len(v) > 0 {
			j := strings.LastIndexByte(v, ',')
			entry := v[j+1:]
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			if strings.TrimSpace(entry) == "" {
				continue
			}
			a, ok := parseClientIP(entry)
			if !ok {
				return netip.Addr{}, false
			}
			if !t.trusted(a) {
				return a, true
			}
			last = a
		}
	}
	return last, last.IsValid()
}

// parseClientIP parses one address as proxies write it: "192.0.2.1",
// "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443", "192.0.2.1:443".
// IPv4-mapped IPv6 is unmapped and zones are dropped. The unspecified
// address is not a client.
func parseClientIP(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return netip.Addr{}, false
	}
	var a netip.Addr
	var err error
	switch {
	case s[0] == '[':
		if s[len(s)-1] == ']' {
			a, err = netip.ParseAddr(s[1 : len(s)-1])
		} else {
			var ap netip.AddrPort
			ap, err = netip.ParseAddrPort(s)
			a = ap.Addr()
		}
	default:
		a, err = netip.ParseAddr(s)
		if err != nil && strings.Count(s, ":") == 1 {
			var ap netip.AddrPort
			ap, err = netip.ParseAddrPort(s)
			a = ap.Addr()
		}
	}
	if err != nil || !a.IsValid() {
		return netip.Addr{}, false
	}
	a = a.WithZone("").Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// cleanRequestHeaders drops hop-by-hop headers (policy.go), the headers
// named in Connection, "Proxy" (httpoxy), "Client-Ip" and "Forwarded"
// always, and every forwarding header a client wrote unless the peer is
// trusted. Connection, Upgrade and Te stay for the paths to the backend,
// which read them (a websocket upgrade, "Te: trailers") and never forward
// them as they are.
func cleanRequestHeaders(h http.Header, trustedPeer bool) {
	if vv := h["Connection"]; len(vv) > 0 {
		forEachConnectionToken(vv, func(tok string) {
			if !strings.EqualFold(tok, "upgrade") && !strings.EqualFold(tok, "te") {
				h.Del(tok)
			}
		})
	}
	for _, k := range hopHeaders {
		switch k {
		case "Connection", "Upgrade", "Te":
		default:
			delete(h, k)
		}
	}
	delete(h, "Proxy")
	delete(h, "Client-Ip")
	delete(h, "Forwarded")
	if trustedPeer {
		return
	}
	for k := range h {
		if isForwardingHeader(k) {
			delete(h, k)
		}
	}
}

// isForwardingHeader reports whether the canonical key k carries a claim
// about the client or the route: X-Forwarded-*, Forwarded, X-Real-Ip,
// Client-Ip, Cf-*.
func isForwardingHeader(k string) bool {
	switch {
	case len(k) >= 3 && (k[0] == 'C' || k[0] == 'c') && strings.EqualFold(k[:3], "cf-"):
		return true
	case len(k) >= 12 && (k[0] == 'X' || k[0] == 'x') && strings.EqualFold(k[:12], "x-forwarded-"):
		return true
	}
	return strings.EqualFold(k, "X-Real-Ip") || strings.EqualFold(k, "Client-Ip") || strings.EqualFold(k, "Forwarded") || strings.EqualFold(k, "True-Client-Ip")
}

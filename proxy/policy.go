package proxy

import (
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
)

// This file is the one backend policy: what every request to a backend
// carries and what every answer may carry back, on both paths to the
// backend (the lean HTTP/1.1 client and httputil.ReverseProxy).
//
// Requests: the edge cleans the client's header once (cleanRequestHeaders:
// hop-by-hop headers, the headers named in Connection, "Proxy", and the
// forwarding headers of an untrusted peer); then each path sends Host,
// path and query as received, every header forwardRequestHeader keeps,
// and the forwarding headers the edge decided (forwardingHeaders).
//
// Answers: cleanResponseHeader drops hop-by-hop headers, those named in
// Connection, and the headers the edge owns (Strict-Transport-Security
// when the edge sets its own, Alt-Svc); the edge's own headers (HSTS,
// Alt-Svc, the rate limits') survive any 1xx answer (reqState.keepEdge).

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 and the older
// ones proxies still meet: never forwarded in either direction.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// isHopHeader reports whether the canonical key k is hop-by-hop.
func isHopHeader(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

// forEachConnectionToken calls f with each token of the Connection header
// values vv.
func forEachConnectionToken(vv []string, f func(tok string)) {
	for _, v := range vv {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if tok = textproto.TrimString(tok); tok != "" {
				f(tok)
			}
		}
	}
}

// forwardRequestHeader reports whether the request header k (canonical,
// after cleanRequestHeaders) is sent to the backend as the client wrote
// it. Host and framing are written by each path; the forwarding headers
// are the edge's own (forwardingHeaders). Connection and Upgrade of a
// websocket upgrade are written by the upgrade path itself.
func forwardRequestHeader(k string) bool {
	switch k {
	case "Host", "Content-Length", "Proxy", "Forwarded", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Client-Ip":
		return false
	}
	return !isHopHeader(k)
}

// forwardingHeaders are the headers the edge writes on every backend
// request, in order: the client it decided and the scheme it serves.
const (
	hdrForwardedFor   = "X-Forwarded-For"
	hdrRealIP         = "X-Real-Ip"
	hdrForwardedProto = "X-Forwarded-Proto"
)

// rewriteTo is the ReverseProxy side of the policy: it sends the request
// to target with Host, path and raw query unchanged, the headers
// forwardRequestHeader keeps, and the edge's forwarding headers.
// (ReverseProxy has already dropped hop-by-hop headers and those named in
// Connection; it adds "Te: trailers" and a websocket's Upgrade itself.)
func rewriteTo(target *httpTarget) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme = target.scheme
		pr.Out.URL.Host = target.host
		pr.Out.Host = pr.In.Host
		// ReverseProxy re-encodes a query it cannot parse (one with ";"),
		// sorting it; inbox deliveries are signed over it as sent.
		pr.Out.URL.RawQuery = pr.In.URL.RawQuery
		h := pr.Out.Header
		for k := range h {
			// the hop-by-hop headers left are ReverseProxy's own
			// ("Te: trailers", a websocket's Upgrade)
			if !forwardRequestHeader(k) && !isHopHeader(k) {
				delete(h, k)
			}
		}
		client := ClientAddr(pr.In).String()
		h[hdrForwardedFor] = []string{client}
		h[hdrRealIP] = []string{client}
		h[hdrForwardedProto] = []string{"https"}
	}
}

// httpTarget is a backend's scheme and host:port.
type httpTarget struct{ scheme, host string }

// cleanResponseHeader drops from a backend answer (final or 1xx) its
// hop-by-hop headers, those its Connection header names, and what the
// edge owns: Alt-Svc (the edge announces its own protocols) and, when the
// edge sets its own, Strict-Transport-Security.
func (c *chain) cleanResponseHeader(h http.Header) {
	if vv := h["Connection"]; len(vv) > 0 {
		forEachConnectionToken(vv, func(tok string) { h.Del(tok) })
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	c.cleanUpgradeResponseHeader(h)
}

// oneValue is a header value to share between answers: nil for "", else
// a slice whose capacity is its length, so that Header.Add and the edge's
// own appends copy it, never write into it.
func oneValue(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// cleanUpgradeResponseHeader drops from a backend's 101 what the edge
// owns; its Connection and Upgrade are the upgrade's own.
func (c *chain) cleanUpgradeResponseHeader(h http.Header) {
	delete(h, "Alt-Svc")
	if c.hsts != nil {
		delete(h, "Strict-Transport-Security")
	}
}

// edgeOwned are the headers the edge sets on an answer before the backend
// is asked (HSTS, Alt-Svc, the rate limits'); reqState keeps them across
// a 1xx answer, which ReverseProxy clears the header map after.
var edgeOwned = [...]string{
	"Strict-Transport-Security", "Alt-Svc",
	"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset",
}

// saveEdge remembers the edge's own headers before the backend is asked,
// so that a 1xx answer (which both paths clear the header map after, as
// ReverseProxy does) cannot take them away.
func (s *reqState) saveEdge() {
	s.kept = true
	h := s.ResponseWriter.Header()
	for i, k := range edgeOwned {
		if v := h[k]; len(v) > 0 {
			s.keep[i] = v[:1:1]
		}
	}
}

// restoreEdge puts the edge's own headers first again, before a 1xx or
// the final answer is written; what the backend added stays after them.
func (s *reqState) restoreEdge() {
	if !s.kept {
		return
	}
	h := s.ResponseWriter.Header()
	for i, k := range edgeOwned {
		if e := s.keep[i]; e != nil {
			if v := h[k]; len(v) == 0 || v[0] != e[0] {
				h[k] = append(e, v...)
			}
		}
	}
}

// relayInformational passes a backend's 1xx answer (103 Early Hints) on
// to the client as ReverseProxy does: its cleaned header is added, the
// 1xx is written, and the header map is cleared for the final answer
// (reqState puts the edge's own headers back).
func (c *chain) relayInformational(w http.ResponseWriter, r *http.Request, code int, hdr http.Header) {
	if st := stateOf(r); st != nil && !st.kept {
		st.saveEdge()
	}
	c.cleanResponseHeader(hdr)
	h := w.Header()
	for k, vv := range hdr {
		h[k] = append(h[k], vv...)
	}
	w.WriteHeader(code)
	clear(h)
}

package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
)

// errBackendHeaderTooLarge is a backend answer whose header block is over
// backend.max_response_header_bytes: 502, never relayed.
var errBackendHeaderTooLarge = errors.New("proxy: backend response header larger than backend.max_response_header_bytes")

// edgeError answers an error the edge decides itself (400, 405, 408, 413,
// 421, 425, 431, 502, 504), in the form the client reads: JSON
// {"error": "..."} on /api/ and to a client that accepts JSON, as
// Mastodon's own errors are; static_root/500.html for a 5xx when it
// exists; else short text.
func (c *chain) edgeError(w http.ResponseWriter, r *http.Request, status int, text string) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if status >= 500 {
		h.Set("Cache-Control", "no-store")
	}
	switch {
	case wantsJSON(r):
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":`+jsonString(text)+"}\n")
	case status >= 500 && c.errorPage != nil:
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(c.errorPage)
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text+"\n")
	}
}

// wantsJSON reports whether an error to r is answered in JSON: an API
// path (in its canonical spelling, as the router reads it), or an Accept
// that names a JSON type.
func wantsJSON(r *http.Request) bool {
	if r == nil {
		return false
	}
	p := r.URL.Path
	if st := stateOf(r); st != nil && st.facts.Path != "" {
		p = st.facts.Path
	}
	if p == "/api" || strings.HasPrefix(p, "/api/") {
		return true
	}
	for _, v := range r.Header["Accept"] {
		if strings.Contains(v, "json") {
			return true
		}
	}
	return false
}

// jsonString quotes s as a JSON string. The edge's texts are plain ASCII;
// anything else is escaped.
func jsonString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case ch < 0x20 || ch >= 0x7f:
			const hex = "0123456789abcdef"
			b.WriteString(`\u00`)
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// proxyError maps a failed proxying to its public half (status and page)
// and logs the private half (the cause), once, on either path to the
// backend.
func (c *chain) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	status := http.StatusBadGateway
	var netErr net.Error
	switch {
	case st != nil && st.body != nil && st.body.tooLarge:
		status = http.StatusRequestEntityTooLarge
	case st != nil && st.body != nil && st.body.timedOut:
		status = http.StatusRequestTimeout
	case st != nil && st.body != nil && st.body.err != nil:
		status = http.StatusBadRequest
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		c.log.Debug("client gone", "client", ClientAddr(r).String(), "path", r.URL.Path, "err", err)
		if st != nil {
			st.status = 499
		}
		return
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		status = http.StatusGatewayTimeout
	}
	c.log.Warn("backend error", "client", ClientAddr(r).String(), "path", r.URL.Path, "status", status, "err", err)
	switch status {
	case http.StatusRequestEntityTooLarge:
		w.Header().Set("Connection", "close")
		c.edgeError(w, r, status, "request body too large")
	case http.StatusBadRequest:
		w.Header().Set("Connection", "close")
		c.edgeError(w, r, status, "bad request body")
	case http.StatusRequestTimeout:
		w.Header().Set("Connection", "close")
		c.edgeError(w, r, status, "request timeout: the request body stalled")
	case http.StatusGatewayTimeout:
		c.edgeError(w, r, status, "gateway timeout: the backend did not answer in time")
	default:
		c.edgeError(w, r, status, "bad gateway: the backend cannot be reached")
	}
}

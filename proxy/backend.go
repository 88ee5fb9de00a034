package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// backends are the reverse proxies to backend.web and backend.streaming,
// sharing one pooled transport (HTTP/1.1 only, no compression), and the
// lean client that takes bodiless GET and HEAD requests to an http://
// backend.web.
type backends struct {
	transport *http.Transport
	web       *httputil.ReverseProxy
	stream    *streamRoute
	h1        *h1Client // nil for an https backend.web
	c         *chain
}

func newBackends(b configs.Backend, c *chain) (*backends, error) {
	web, err := parseBackend("backend.web", b.Web)
	if err != nil {
		return nil, err
	}
	streamURL := web
	if b.Streaming != "" {
		if streamURL, err = parseBackend("backend.streaming", b.Streaming); err != nil {
			return nil, err
		}
	}
	dialer := &net.Dialer{Timeout: b.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: b.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
	pool := &bufferPool{}
	pool.p.New = func() any { b := make([]byte, 32<<10); return &b }
	bk := &backends{transport: t, c: c}
	var modify func(*http.Response) error
	if c.hsts != "" {
		modify = func(resp *http.Response) error {
			delete(resp.Header, "Strict-Transport-Security") // the edge's own is already set
			return nil
		}
	}
	if web.Scheme == "http" {
		bk.h1 = newH1Client(web, b.ConnectTimeout, b.ResponseTimeout, t.MaxIdleConnsPerHost, c.log, c.proxyError)
		bk.h1.dropHSTS = c.hsts != ""
	}
	bk.web = &httputil.ReverseProxy{
		Rewrite:        rewriteTo(web),
		Transport:      t,
		BufferPool:     pool,
		ErrorHandler:   c.proxyError,
		ModifyResponse: modify,
	}
	bk.stream = newStreamRoute(c, streamURL, b, t, pool, modify)
	return bk, nil
}

func parseBackend(key, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy: %s %q: want an absolute http(s) URL", key, raw)
	}
	return u, nil
}

// rewriteTo sends the request to target with Host, path and raw query
// unchanged, and the forwarding headers the edge decided.
func rewriteTo(target *url.URL) func(*httputil.ProxyRequest) {
	scheme, host := target.Scheme, target.Host
	return func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme = scheme
		pr.Out.URL.Host = host
		pr.Out.Host = pr.In.Host
		// ReverseProxy re-encodes a query it cannot parse (one with ";"),
		// sorting it; inbox deliveries are signed over it as sent.
		pr.Out.URL.RawQuery = pr.In.URL.RawQuery
		h := pr.Out.Header
		client := ClientAddr(pr.In).String()
		h["X-Forwarded-For"] = []string{client}
		h["X-Real-Ip"] = []string{client}
		h["X-Forwarded-Proto"] = []string{"https"}
		delete(h, "Forwarded")
		delete(h, "Client-Ip")
		delete(h, "Proxy")
	}
}

func (b *backends) serveWeb(w http.ResponseWriter, r *http.Request) {
	if _, upgrade := r.Header["Upgrade"]; upgrade {
		if conn, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			defer b.c.edge.conns.forget(conn)
		}
	}
	if b.c.gzip.wants(r) {
		gw := b.c.gzip.wrap(w)
		defer gw.finish()
		w = gw
	}
	if b.h1 != nil && b.h1.eligible(r) {
		b.h1.serve(w, r)
		return
	}
	b.web.ServeHTTP(w, r)
}

// serveStream serves the streaming route (websocket.go).
func (b *backends) serveStream(w http.ResponseWriter, r *http.Request) { b.stream.serve(w, r) }

func (b *backends) closeIdle() {
	b.transport.CloseIdleConnections()
	if b.h1 != nil {
		b.h1.closeIdle()
	}
}

// proxyError maps a failed proxying to its public half (status and page)
// and logs the private half (the cause).
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
		c.log.Debug("client gone", "path", r.URL.Path, "err", err)
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
		c.plainError(w, status, "request body too large")
		return
	case http.StatusBadRequest:
		w.Header().Set("Connection", "close")
		c.plainError(w, status, "bad request body")
		return
	case http.StatusRequestTimeout:
		w.Header().Set("Connection", "close")
		c.plainError(w, status, "request timeout: the request body stalled")
		return
	}
	if c.errorPage != nil {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(c.errorPage)
		return
	}
	if status == http.StatusGatewayTimeout {
		c.plainError(w, status, "gateway timeout: the backend did not answer in time")
		return
	}
	c.plainError(w, status, "bad gateway: the backend cannot be reached")
}

// bufferPool lends 32 KiB copy buffers to the reverse proxies.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

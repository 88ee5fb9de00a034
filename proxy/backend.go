package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/copybuf"
)

// backends are the reverse proxies to backend.web and backend.streaming,
// sharing one pooled transport (HTTP/1.1 only, no compression), and the
// lean client that takes bodiless GET and HEAD requests to an http://
// backend.web.
type backends struct {
	transport *http.Transport
	web       *httputil.ReverseProxy
	stream    *httputil.ReverseProxy
	h1        *h1Client // nil for an https backend.web
	c         *chain
}

func newBackends(b configs.Backend, c *chain, noLean bool) (*backends, error) {
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
	// One pool policy for both paths: the same idle time (under Puma's
	// keep-alive), the same bound on idle connections and on the
	// backend's header block, the same copy buffers.
	dialer := &net.Dialer{Timeout: b.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:            dialer.DialContext,
		MaxIdleConns:           2 * b.MaxIdleConns,
		MaxIdleConnsPerHost:    b.MaxIdleConns,
		IdleConnTimeout:        b.IdleTimeout,
		ResponseHeaderTimeout:  b.ResponseTimeout,
		MaxResponseHeaderBytes: b.MaxResponseHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{},
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
	bk := &backends{transport: t, c: c}
	modify := func(resp *http.Response) error {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			c.cleanUpgradeResponseHeader(resp.Header) // the upgrade needs its hop-by-hop headers
			return nil
		}
		c.cleanResponseHeader(resp.Header)
		return nil
	}
	if web.scheme == "http" && !noLean {
		bk.h1 = newH1Client(web, b, c)
	}
	bk.web = &httputil.ReverseProxy{
		Rewrite:        rewriteTo(web),
		Transport:      t,
		BufferPool:     copybuf.Shared,
		ErrorHandler:   c.proxyError,
		ErrorLog:       c.errorLog,
		ModifyResponse: modify,
	}
	bk.stream = &httputil.ReverseProxy{
		Rewrite:        rewriteTo(streamURL),
		Transport:      t,
		BufferPool:     copybuf.Shared,
		FlushInterval:  -1,
		ErrorHandler:   c.proxyError,
		ErrorLog:       c.errorLog,
		ModifyResponse: modify,
	}
	return bk, nil
}

func parseBackend(key, raw string) (*httpTarget, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy: %s %q: want an absolute http(s) URL", key, raw)
	}
	return &httpTarget{scheme: u.Scheme, host: u.Host}, nil
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
		b.h1.serve(w, r) // keeps the edge's headers at a 1xx (relayInformational)
		return
	}
	if st := stateOf(r); st != nil {
		st.saveEdge() // ReverseProxy clears the header map after a 1xx
	}
	b.web.ServeHTTP(w, r)
}

// serveStream proxies unbuffered; the request ends when the client goes,
// or when the edge shuts down (after its drain).
func (b *backends) serveStream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(b.c.edge.streamCtx, cancel)
	defer func() {
		stop()
		cancel()
	}()
	if conn, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		defer b.c.edge.conns.forget(conn)
	}
	if st := stateOf(r); st != nil {
		st.saveEdge()
	}
	b.stream.ServeHTTP(w, r.WithContext(ctx))
}

func (b *backends) closeIdle() {
	b.transport.CloseIdleConnections()
	if b.h1 != nil {
		b.h1.closeIdle()
	}
}

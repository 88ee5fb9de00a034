package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/cache"
)

func BenchmarkClientAddr(b *testing.B) {
	tr := newTrust([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}, []string{"CF-Connecting-IP", "X-Forwarded-For"})
	r := &http.Request{RemoteAddr: "127.0.0.1:41234", Header: http.Header{
		"X-Forwarded-For": {"203.0.113.9, 198.51.100.7"}, "Accept": {"*/*"}, "Cookie": {"a=b"},
	}}
	b.ReportAllocs()
	for b.Loop() {
		peer := peerAddr(r)
		if tr.decide(peer, r.Header) != netip.MustParseAddr("198.51.100.7") {
			b.Fatal("wrong client")
		}
	}
}

func BenchmarkRouting(b *testing.B) {
	cfg := testConfig(b, "http://127.0.0.1:1", "")
	rt := newRouter(cfg.Routes)
	paths := []string{"/api/v1/timelines/home", "/api/v1/streaming/user", "/system/media/x.png", "/sw.js", "/@alice"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := paths[i%len(paths)]
		if !rt.isStreaming(p) {
			_ = rt.staticRoute(p)
		}
	}
}

// BenchmarkHandlerProxySmallJSON runs the whole chain in-process (no TLS)
// against a loopback backend answering a small JSON, down each path to
// the backend: the lean client (GET), ReverseProxy for the same GET (the
// A/B of the two: the lean client stays only while it buys 15% or more),
// and ReverseProxy for a POST (its only path).
func BenchmarkHandlerProxySmallJSON(b *testing.B) {
	be := smallJSONBackend(b)
	discard := slog.New(slog.DiscardHandler)
	b.Run("lean/GET", func(b *testing.B) { benchHandler(b, be, Options{Logger: discard}, http.MethodGet) })
	b.Run("reverseproxy/GET", func(b *testing.B) { benchHandler(b, be, Options{Logger: discard, noLean: true}, http.MethodGet) })
	b.Run("reverseproxy/POST", func(b *testing.B) { benchHandler(b, be, Options{Logger: discard}, http.MethodPost) })
	// The answer is not storable (no Cache-Control, no validator): the
	// cache's cost on traffic it only passes through, as the API's is.
	b.Run("lean+cache/GET", func(b *testing.B) {
		c, err := cache.New(testConfig(b, be.URL, "").Cache, cache.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		benchHandler(b, be, Options{Logger: discard, WebCache: c.Handler}, http.MethodGet)
	})
}

func smallJSONBackend(b *testing.B) *httptest.Server {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"1","username":"alice","acct":"alice"}`)
	}))
	b.Cleanup(be.Close)
	return be
}

// benchHandler runs method /api/v1/accounts/1 (a POST with a small body)
// through an edge's handler with opts, in-process.
func benchHandler(b *testing.B, be *httptest.Server, opts Options, method string) {
	tc, _ := testTLS(b)
	opts.TLSConfig = tc
	e, err := New(testConfig(b, be.URL, ""), opts)
	if err != nil {
		b.Fatal(err)
	}
	h := e.Handler()
	req := httptest.NewRequest(method, "https://example.test/api/v1/accounts/1", nil)
	req.RemoteAddr = "192.0.2.1:50000"
	body := strings.NewReader(`{"type":"Create"}`)
	b.ReportAllocs()
	for b.Loop() {
		if method == http.MethodPost {
			body.Reset(`{"type":"Create"}`)
			req.Body, req.ContentLength = io.NopCloser(body), int64(body.Len())
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// benchEdge starts an edge with HTTP/3 in front of a small-JSON backend.
func benchEdge(b *testing.B) *testEdge {
	cfg := testConfig(b, smallJSONBackend(b).URL, "")
	cfg.Server.HTTP3 = true
	return startEdge(b, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
}

func benchClient(b *testing.B, c *http.Client, url string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkEdgeHTTPS compares the protocols end to end over loopback on
// the same server: HTTPS keep-alive HTTP/1.1, HTTP/2 and HTTP/3.
func BenchmarkEdgeHTTPS(b *testing.B) {
	te := benchEdge(b)
	url := te.base + "/api/v1/accounts/1"
	b.Run("HTTP1.1", func(b *testing.B) {
		c := te.client(false)
		c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		benchClient(b, c, url)
	})
	b.Run("HTTP2", func(b *testing.B) { benchClient(b, te.client(true), url) })
	b.Run("HTTP3", func(b *testing.B) { benchClient(b, te.h3Client(b), url) })
}

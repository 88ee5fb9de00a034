package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"

	"github.com/fedigate/fedigate/internal/testenv"
)

// testTLS makes a self-signed certificate for localhost/127.0.0.1 and a
// pool that trusts it.
func testTLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost", "example.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}, pool
}

// logBuffer collects log output safely across goroutines.
type logBuffer = testenv.LogBuffer

type testEdge struct {
	*Edge
	pool   *x509.CertPool
	tlsCfg *tls.Config
	logs   *logBuffer
	base   string // https://127.0.0.1:port
}

// testConfig is the mastodon preset with both backends at url, listening
// on a free loopback port.
func testConfig(t testing.TB, web, streaming string) *configs.Config {
	t.Helper()
	cfg, err := configs.Default(configs.PresetMastodon)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.HTTP3 = false
	cfg.Server.TrustedProxies = nil
	cfg.Backend.Web = web
	cfg.Backend.Streaming = streaming
	cfg.Backend.ConnectTimeout = 2 * time.Second
	cfg.Backend.ResponseTimeout = 5 * time.Second
	cfg.Server.ShutdownTimeout = 5 * time.Second
	return cfg
}

func startEdge(t testing.TB, cfg *configs.Config, opts Options) *testEdge {
	t.Helper()
	tc, pool := testTLS(t)
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	opts.TLSConfig = tc
	e, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := contextTimeout(5 * time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return &testEdge{Edge: e, pool: pool, tlsCfg: tc, logs: logs, base: "https://" + e.Addr().String()}
}

// client returns an HTTPS client trusting the test certificate; h2 selects
// HTTP/2, else HTTP/1.1 only.
func (te *testEdge) client(h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: te.pool, ServerName: "localhost"}, DisableCompression: true}
	if h2 {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// rawTLS opens a TLS connection speaking HTTP/1.1 to the edge.
func (te *testEdge) rawTLS(t testing.TB) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", te.Edge.Addr().String(), &tls.Config{RootCAs: te.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// seen is what a test backend saw of one request.
type seen struct {
	Host, Path, RawQuery, Method string
	Header                       http.Header
	Body                         []byte
	BodyErr                      error
}

// recordingBackend answers 200 "ok" and sends what it saw on a channel.
func recordingBackend(t testing.TB) (*httptest.Server, chan seen) {
	ch := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		ch <- seen{Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Method: r.Method, Header: r.Header.Clone(), Body: b, BodyErr: err}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func get(t testing.TB, c *http.Client, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func dialPlain(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func (te *testEdge) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(te.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

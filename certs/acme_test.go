package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

func newACMESource(t testing.TB, p *testenv.Pebble, dir string, logs *bytes.Buffer, every time.Duration) *Source {
	t.Helper()
	cfg := configs.TLS{Mode: configs.TLSACME, StateDir: dir, ACMECA: p.Directory, ACMECARoot: p.ServerCA, ACMEEmail: "admin@fedigate.test"}
	log := quiet()
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg, []string{"fedigate.test"}, Options{Logger: log, TLSALPNPort: testenv.FreePort(t), CheckInterval: every})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitCert waits until the Source serves a certificate for name that is
// not old, and returns it.
func waitCert(t testing.TB, s *Source, name string, old *x509.Certificate, within time.Duration) *tls.Certificate {
	t.Helper()
	get := s.TLSConfig().GetCertificate
	deadline := time.Now().Add(within)
	for {
		c, err := get(hello(t, name))
		if err == nil && c.Leaf != nil && (old == nil || !c.Leaf.Equal(old)) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s within %v (last error %v)", name, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Issuance from a real ACME server, a restart that serves the stored
// certificate at once, and an unknown SNI that gets nothing.
func TestACMEIssueRestartAndAttackUnknownSNIRefused(t *testing.T) {
	p := testenv.StartPebble(t, time.Hour)
	dir := t.TempDir()
	s := newACMESource(t, p, dir, nil, 0)
	cert := waitCert(t, s, "fedigate.test", nil, 30*time.Second)
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "fedigate.test", Roots: p.Roots(t), Intermediates: inter}); err != nil {
		t.Fatalf("issued certificate does not verify against Pebble's root: %v", err)
	}
	for _, sni := range []string{"other.test", "", "x.fedigate.test", "127.0.0.1"} {
		if c, err := s.TLSConfig().GetCertificate(hello(t, sni)); err == nil {
			t.Errorf("SNI %q got a certificate for %v", sni, c.Leaf.DNSNames)
		}
	}
	var b bytes.Buffer
	s.Describe(&b)
	if !strings.Contains(b.String(), "fedigate.test:") || !strings.Contains(b.String(), "expires") {
		t.Errorf("Describe:\n%s", b.String())
	}
	if tls := s.TLSConfig(); !strings.Contains(strings.Join(tls.NextProtos, ","), "acme-tls/1") {
		t.Error("TLS-ALPN-01 not offered")
	}
	s.Close()
	p.Stop() // the CA is gone: a restart must serve from storage alone
	again := newACMESource(t, p, dir, nil, 0)
	stored := waitCert(t, again, "fedigate.test", nil, 5*time.Second)
	if !stored.Leaf.Equal(cert.Leaf) {
		t.Error("restart did not serve the stored certificate")
	}
}

// A short-lived certificate is renewed in the background.
func TestACMERenewsShortLivedCertificate(t *testing.T) {
	p := testenv.StartPebble(t, 30*time.Second)
	s := newACMESource(t, p, t.TempDir(), nil, time.Second)
	first := waitCert(t, s, "fedigate.test", nil, 30*time.Second)
	renewed := waitCert(t, s, "fedigate.test", first.Leaf, 40*time.Second)
	if !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("renewed certificate does not last longer: %v vs %v", renewed.Leaf.NotAfter, first.Leaf.NotAfter)
	}
}

// With the CA unreachable, New still succeeds, nothing is served, and the
// failure is logged with the reason and shown by Describe; no crash. The
// ACME requests go through Options.HTTPClient's proxy function.
func TestACMEFailedIssuanceIsLogged(t *testing.T) {
	sw := &testenv.LogBuffer{}
	var proxied atomic.Int32
	client := &http.Client{Transport: &http.Transport{Proxy: func(r *http.Request) (*url.URL, error) {
		proxied.Add(1)
		return nil, nil // direct: the point is that the hook is consulted
	}}}
	cfg := configs.TLS{Mode: configs.TLSACME, StateDir: t.TempDir(), ACMECA: "https://127.0.0.1:1/dir"}
	s, err := New(cfg, []string{"fedigate.test"}, Options{Logger: slog.New(slog.NewTextHandler(sw, nil)), TLSALPNPort: testenv.FreePort(t), HTTPClient: client})
	if err != nil {
		t.Fatalf("a CA that is down must not fail New: %v", err)
	}
	defer s.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(sw.String(), "level=ERROR") {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged:\n%s", sw.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := s.TLSConfig().GetCertificate(hello(t, "fedigate.test")); err == nil {
		t.Error("a certificate without issuance")
	}
	for {
		var b bytes.Buffer
		s.Describe(&b)
		if strings.Contains(b.String(), "not yet obtained: ") && strings.Contains(b.String(), "127.0.0.1:1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Describe does not show the last error:\n%s", b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if proxied.Load() == 0 {
		t.Error("ACME requests bypassed Options.HTTPClient's proxy")
	}
}

// A client whose Transport certmagic cannot use is refused, not bypassed.
func TestACMEUnusableHTTPClientRefused(t *testing.T) {
	cfg := configs.TLS{Mode: configs.TLSACME, StateDir: t.TempDir(), ACMECA: "https://127.0.0.1:1/dir"}
	client := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, io.EOF })}
	_, err := New(cfg, []string{"fedigate.test"}, Options{Logger: quiet(), TLSALPNPort: 1, HTTPClient: client})
	if err == nil || !strings.Contains(err.Error(), "HTTPClient") {
		t.Fatalf("want a refusal naming HTTPClient, got %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hello is a ClientHelloInfo as a real handshake makes it (with a conn).
func hello(t testing.TB, name string) *tls.ClientHelloInfo {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &tls.ClientHelloInfo{ServerName: name, Conn: a}
}

// BenchmarkGetCertificateACME is certmagic's lookup per handshake, for a
// certificate obtained from a real Pebble.
func BenchmarkGetCertificateACME(b *testing.B) {
	p := testenv.StartPebble(b, time.Hour)
	s := newACMESource(b, p, b.TempDir(), nil, 0)
	waitCert(b, s, "fedigate.test", nil, 30*time.Second)
	get := s.TLSConfig().GetCertificate
	h := hello(b, "fedigate.test")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := get(h); err != nil {
			b.Fatal(err)
		}
	}
}

package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func selfSigned(t *testing.T, dir string, hosts []string, now func() time.Time) *Source {
	t.Helper()
	s, err := New(configs.TLS{Mode: configs.TLSSelfSigned, StateDir: dir}, hosts, Options{Logger: quiet(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func served(t *testing.T, s *Source) *x509.Certificate {
	t.Helper()
	c, err := s.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "social.test"})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func TestSelfSignedReusedAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a := selfSigned(t, dir, []string{"social.test"}, nil)
	leafA := served(t, a)
	caA, _ := os.ReadFile(filepath.Join(dir, caFile))
	a.Close()
	b := selfSigned(t, dir, []string{"social.test"}, nil)
	caB, _ := os.ReadFile(filepath.Join(dir, caFile))
	if !bytes.Equal(caA, caB) || !served(t, b).Equal(leafA) {
		t.Fatal("a second start did not reuse the CA and leaf")
	}
	for name, want := range map[string]os.FileMode{".": 0o700, caKeyFile: 0o600, leafKeyFile: 0o600, caFile: 0o644, leafFile: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (want %v) %v", name, st.Mode().Perm(), want, err)
		}
	}
	names := strings.Join(describe(leafA, "").Names, ",")
	if names != "social.test,localhost,127.0.0.1,::1" {
		t.Errorf("leaf names %s", names)
	}
}

func TestSelfSignedLooseStateDirTightened(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	selfSigned(t, dir, nil, nil)
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("state dir left %v", st.Mode().Perm())
	}
}

// A key left readable by others (chmod by hand, a bad backup restore) is
// tightened back to 0600 at start, and the same CA kept.
func TestSelfSignedLooseKeysTightened(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir, nil, nil).Close()
	caBefore, _ := os.ReadFile(filepath.Join(dir, caFile))
	for _, k := range []string{caKeyFile, leafKeyFile} {
		if err := os.Chmod(filepath.Join(dir, k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	selfSigned(t, dir, nil, nil)
	for _, k := range []string{caKeyFile, leafKeyFile} {
		if st, _ := os.Stat(filepath.Join(dir, k)); st.Mode().Perm() != 0o600 {
			t.Errorf("%s left %v", k, st.Mode().Perm())
		}
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, caFile)); !bytes.Equal(caBefore, caAfter) {
		t.Error("the CA was replaced")
	}
}

// A symlink planted where the CA key belongs is refused, not followed.
func TestAttackSymlinkedKeyRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, caKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := New(configs.TLS{Mode: configs.TLSSelfSigned, StateDir: dir}, nil, Options{Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("want refusal, got %v", err)
	}
}

// The leaf is renewed in place, before it expires, with no restart.
func TestSelfSignedRenewedWithoutRestart(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	s := selfSigned(t, t.TempDir(), []string{"social.test"}, clk.Now)
	first := served(t, s)
	clk.Advance(59 * 24 * time.Hour) // 31 days left: kept
	if err := s.renewIfNeeded(); err != nil {
		t.Fatal(err)
	}
	if !served(t, s).Equal(first) {
		t.Fatal("renewed too early")
	}
	clk.Advance(2 * 24 * time.Hour) // 29 days left: renewed
	if err := s.renewIfNeeded(); err != nil {
		t.Fatal(err)
	}
	second := served(t, s)
	if second.Equal(first) || second.NotAfter.Sub(clk.Now()) < 80*24*time.Hour {
		t.Fatalf("not renewed: %v", second.NotAfter)
	}
	ca := pemCert(t, filepath.Join(s.cfg.StateDir, caFile))
	if second.CheckSignatureFrom(ca) != nil {
		t.Error("renewed leaf not signed by the same CA")
	}
}

// A renewal prepared by a reload that then fails serves nothing and
// writes no leaf: the stored leaf and the served one stay as they were;
// the commit writes and serves the new one.
func TestSelfSignedReloadPreparedNotCommittedChangesNothing(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	s := selfSigned(t, t.TempDir(), []string{"social.test"}, clk.Now)
	first := served(t, s)
	stored, _ := os.ReadFile(filepath.Join(s.cfg.StateDir, leafFile))
	clk.Advance(61 * 24 * time.Hour) // 29 days left: due
	p, err := s.PrepareReload()
	if err != nil {
		t.Fatal(err)
	}
	if !served(t, s).Equal(first) {
		t.Fatal("a prepare alone changed the served leaf")
	}
	if now, _ := os.ReadFile(filepath.Join(s.cfg.StateDir, leafFile)); !bytes.Equal(now, stored) {
		t.Fatal("a prepare alone wrote the leaf")
	}
	p.Commit()
	second := served(t, s)
	if second.Equal(first) {
		t.Fatal("the commit did not serve the renewed leaf")
	}
	if onDisk := pemCert(t, filepath.Join(s.cfg.StateDir, leafFile)); !onDisk.Equal(second) {
		t.Fatal("the commit did not write the leaf it serves")
	}
}

func TestSelfSignedReissuedWhenHostsChange(t *testing.T) {
	dir := t.TempDir()
	a := selfSigned(t, dir, []string{"one.test"}, nil)
	leafA := served(t, a)
	a.Close()
	b := selfSigned(t, dir, []string{"one.test", "two.test"}, nil)
	if leafB := served(t, b); leafB.Equal(leafA) || leafB.VerifyHostname("two.test") != nil {
		t.Fatal("new host not covered")
	}
}

// A CA without its key is never silently replaced.
func TestSelfSignedIncompleteCARefused(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir, nil, nil).Close()
	os.Remove(filepath.Join(dir, caKeyFile))
	if _, err := New(configs.TLS{Mode: configs.TLSSelfSigned, StateDir: dir}, nil, Options{Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("err = %v", err)
	}
}

// A real curl verifies the served leaf against the CA file alone, and
// Describe prints what cloudflared needs with the leaf's fingerprint.
func TestSelfSignedVerifiedByCurl(t *testing.T) {
	curl := testenv.Binary(t, "curl", "curl")
	s := selfSigned(t, t.TempDir(), []string{"social.test"}, nil)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "verified") })}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ca := filepath.Join(s.cfg.StateDir, caFile)
	out, err := exec.Command(curl, "-sS", "--cacert", ca, "--resolve", "social.test:"+port+":127.0.0.1", "https://social.test:"+port+"/").CombinedOutput()
	if err != nil || string(out) != "verified" {
		t.Fatalf("curl: %v %s", err, out)
	}
	var b bytes.Buffer
	if err := s.Describe(&b); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(ca)
	// The fingerprint computed here from the file on disk, not by Fingerprint.
	sum := sha256.Sum256(pemCert(t, filepath.Join(s.cfg.StateDir, leafFile)).Raw)
	var pairs []string
	for _, x := range sum {
		pairs = append(pairs, strings.ToUpper(hex.EncodeToString([]byte{x})))
	}
	for _, want := range []string{"caPool: " + abs, "originServerName: social.test", "SHA-256:       " + strings.Join(pairs, ":")} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Describe lacks %q:\n%s", want, b.String())
		}
	}
	if info := s.Certificates(); len(info) != 1 || info[0].SHA256 != Fingerprint(served(t, s).Raw) {
		t.Errorf("Certificates: %+v", info)
	}
}

// Only TLS 1.2 and up, and no suite without forward secrecy.
func TestAttackDowngradeToOldTLSRefused(t *testing.T) {
	s := selfSigned(t, t.TempDir(), nil, nil)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, ln, handshakeAndClose)
	for name, cfg := range map[string]*tls.Config{
		"TLS 1.1":   {MaxVersion: tls.VersionTLS11},
		"RSA kx":    {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}},
		"CBC suite": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
	} {
		cfg.InsecureSkipVerify = true
		if c, err := tls.Dial("tcp", ln.Addr().String(), cfg); err == nil {
			c.Close()
			t.Errorf("%s accepted", name)
		}
	}
}

func pemCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(path, strings.Replace(path, ".pem", "-key.pem", 1))
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func BenchmarkGetCertificate(b *testing.B) {
	s, err := New(configs.TLS{Mode: configs.TLSSelfSigned, StateDir: b.TempDir()}, nil, Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	get := s.TLSConfig().GetCertificate
	hello := &tls.ClientHelloInfo{ServerName: "social.test"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := get(hello); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandshake(b *testing.B) {
	s, err := New(configs.TLS{Mode: configs.TLSSelfSigned, StateDir: b.TempDir()}, nil, Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	testenv.Serve(b, ln, handshakeAndClose)
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}
	b.ReportAllocs()
	for b.Loop() {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func handshakeAndClose(c net.Conn) { _ = c.(*tls.Conn).Handshake(); c.Close() }

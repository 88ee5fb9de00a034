package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// writePair writes a self-made certificate for name, valid from nb to na.
func writePair(t *testing.T, dir, name string, nb, na time.Time) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := randomSerial()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writeKeyAndCert(keyPath, certPath, key, der); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func filesSource(t *testing.T, certPath, keyPath string, every time.Duration) (*Source, error) {
	t.Helper()
	s, err := New(configs.TLS{Mode: configs.TLSFiles, CertFile: certPath, KeyFile: keyPath}, nil,
		Options{Logger: quiet(), CheckInterval: every})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func TestFilesReloadSwapsGoodAndKeepsOldOnBad(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certPath, keyPath := writePair(t, dir, "one.test", now.Add(-time.Hour), now.Add(24*time.Hour))
	s, err := filesSource(t, certPath, keyPath, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if served(t, s).Subject.CommonName != "one.test" {
		t.Fatal("not loaded")
	}
	writePair(t, dir, "two.test", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err := reload(s); err != nil || served(t, s).Subject.CommonName != "two.test" {
		t.Fatalf("reload: %v", err)
	}
	// A key that does not match the certificate: refused, old kept.
	other := t.TempDir()
	_, otherKey := writePair(t, other, "three.test", now.Add(-time.Hour), now.Add(24*time.Hour))
	b, _ := os.ReadFile(otherKey)
	os.WriteFile(keyPath, b, 0o600)
	if err := reload(s); err == nil {
		t.Fatal("mismatched pair accepted")
	}
	if served(t, s).Subject.CommonName != "two.test" {
		t.Fatal("old certificate not kept")
	}
	os.WriteFile(certPath, []byte("not pem"), 0o644)
	if err := reload(s); err == nil || served(t, s).Subject.CommonName != "two.test" {
		t.Fatalf("garbage accepted: %v", err)
	}
}

// reload prepares and commits at once, as a config reload that builds.
func reload(s *Source) error {
	p, err := s.PrepareReload()
	if err != nil {
		return err
	}
	p.Commit()
	return nil
}

// A reload prepared and never committed (the config reload failed later)
// leaves the served pair as it was, though the files changed; the commit
// of a later reload serves them.
func TestFilesReloadPreparedNotCommittedChangesNothing(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certPath, keyPath := writePair(t, dir, "one.test", now.Add(-time.Hour), now.Add(24*time.Hour))
	s, err := filesSource(t, certPath, keyPath, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, "two.test", now.Add(-time.Hour), now.Add(24*time.Hour))
	p, err := s.PrepareReload()
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, s).Subject.CommonName; got != "one.test" {
		t.Fatalf("served %s after a prepare alone", got)
	}
	p.Commit()
	if got := served(t, s).Subject.CommonName; got != "two.test" {
		t.Fatalf("served %s after the commit", got)
	}
}

// A renewal written by another tool is picked up without a signal.
func TestFilesWatchedForChanges(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certPath, keyPath := writePair(t, dir, "one.test", now.Add(-time.Hour), now.Add(24*time.Hour))
	s, err := filesSource(t, certPath, keyPath, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, "renewed.test", now.Add(-time.Hour), now.Add(48*time.Hour))
	future := time.Now().Add(time.Second) // mtime surely differs
	os.Chtimes(certPath, future, future)
	deadline := time.Now().Add(5 * time.Second)
	for served(t, s).Subject.CommonName != "renewed.test" {
		if time.Now().After(deadline) {
			t.Fatal("change not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFilesBadAtStartRefused(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	certPath, keyPath := writePair(t, dir, "old.test", now.Add(-48*time.Hour), now.Add(-time.Hour))
	if _, err := filesSource(t, certPath, keyPath, 0); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
	if _, err := filesSource(t, filepath.Join(dir, "missing.pem"), keyPath, 0); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	certPath, _ = writePair(t, dir, "new.test", now.Add(-time.Hour), now.Add(time.Hour))
	_, otherKey := writePair(t, t.TempDir(), "x.test", now.Add(-time.Hour), now.Add(time.Hour))
	if _, err := filesSource(t, certPath, otherKey, 0); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	notPEM := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := filesSource(t, notPEM, keyPath, 0); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Errorf("not PEM: %v", err)
	}
}

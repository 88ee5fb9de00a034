package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Files in tls.state_dir (self-signed mode).
const (
	caFile      = "ca.pem"
	caKeyFile   = "ca-key.pem"
	leafFile    = "leaf.pem"
	leafKeyFile = "leaf-key.pem"
)

// Lifetimes: the leaf lives 90 days and is renewed when fewer than 30 are
// left (checked every CheckInterval); the CA lives 10 years.
const (
	leafLifetime = 90 * 24 * time.Hour
	leafRenewAt  = 30 * 24 * time.Hour
	caLifetime   = 10 * 365 * 24 * time.Hour
)

func (s *Source) path(name string) string { return filepath.Join(s.cfg.StateDir, name) }

// names the leaf must cover: the hosts, localhost and both loopbacks.
func (s *Source) leafNames() (dns []string, ips []net.IP) {
	dns = append(dns, s.hosts...)
	if !slices.Contains(dns, "localhost") {
		dns = append(dns, "localhost")
	}
	return dns, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
}

// loadSelfSigned makes sure the state dir, the CA and a fitting leaf exist.
func (s *Source) loadSelfSigned() error {
	if err := ensureStateDir(s.cfg.StateDir, s.log); err != nil {
		return err
	}
	for _, name := range []string{caKeyFile, leafKeyFile} {
		if err := tightenKey(s.path(name), s.log); err != nil {
			return err
		}
	}
	return s.renewIfNeeded()
}

// tightenKey makes a stored private key 0600 again if someone loosened it
// (the key is kept: replacing the CA would break cloudflared's caPool).
func tightenKey(path string, log interface{ Warn(string, ...any) }) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tls.state_dir: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("tls.state_dir: %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("private key was readable by others: tightened to 0600", "file", path, "was", st.Mode().Perm().String())
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("tls.state_dir: %w", err)
		}
	}
	return nil
}

// renewIfNeeded serves the stored leaf when it is signed by the CA, covers
// every name and has more than leafRenewAt left; else it issues a new one,
// writes it, and serves it.
func (s *Source) renewIfNeeded() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := s.nextLeaf()
	if err != nil {
		return err
	}
	if next.key != nil {
		if err := next.save(s); err != nil {
			return err
		}
	}
	next.serve(s)
	return nil
}

// leafChoice is the leaf the self-signed mode should serve: the stored one
// (key nil), or one just issued in memory (key set) and not yet written.
type leafChoice struct {
	cert *tls.Certificate
	key  *ecdsa.PrivateKey
}

// nextLeaf picks the leaf to serve without serving it or writing it (the
// one write it can make is a missing CA, which serves nothing by itself).
// The caller holds s.mu.
func (s *Source) nextLeaf() (leafChoice, error) {
	ca, caKey, err := s.loadOrCreateCA()
	if err != nil {
		return leafChoice{}, err
	}
	now := s.now()
	if cert, err := tls.LoadX509KeyPair(s.path(leafFile), s.path(leafKeyFile)); err == nil && s.leafFits(cert.Leaf, ca, now) {
		return leafChoice{cert: &cert}, nil
	}
	cert, key, err := s.issueLeaf(ca, caKey, now)
	if err != nil {
		return leafChoice{}, err
	}
	return leafChoice{cert: cert, key: key}, nil
}

// save writes a newly issued leaf and its key to tls.state_dir.
func (c leafChoice) save(s *Source) error {
	return writeKeyAndCert(s.path(leafKeyFile), s.path(leafFile), c.key, c.cert.Leaf.Raw)
}

// serve makes c the served leaf; the caller holds s.mu.
func (c leafChoice) serve(s *Source) {
	if cur := s.current.Load(); cur != nil && cur.Leaf.Equal(c.cert.Leaf) {
		return
	}
	s.current.Store(c.cert)
	if c.key != nil {
		s.log.Info("self-signed leaf issued", "names", strings.Join(describe(c.cert.Leaf, "").Names, ","),
			"not_after", c.cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "sha256", Fingerprint(c.cert.Leaf.Raw))
	}
}

func (s *Source) leafFits(leaf, ca *x509.Certificate, now time.Time) bool {
	if leaf == nil || leaf.CheckSignatureFrom(ca) != nil || leaf.NotAfter.Sub(now) < leafRenewAt || now.Before(leaf.NotBefore) {
		return false
	}
	dns, ips := s.leafNames()
	for _, n := range dns {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// loadOrCreateCA reads the CA, or makes one when neither file exists. A
// CA file without its key (or the reverse) is an error: fedigate never
// silently replaces a CA that cloudflared may already trust.
func (s *Source) loadOrCreateCA() (*x509.Certificate, crypto.Signer, error) {
	certPEM, certErr := os.ReadFile(s.path(caFile))
	keyPEM, keyErr := os.ReadFile(s.path(caKeyFile))
	if errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist) {
		return s.createCA()
	}
	if certErr != nil || keyErr != nil {
		return nil, nil, fmt.Errorf("local CA in %s is incomplete (%v; %v): restore both %s and %s, or remove both to make a new CA (cloudflared's caPool must then be updated)",
			s.cfg.StateDir, certErr, keyErr, caFile, caKeyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("local CA %s: %w", s.path(caFile), err)
	}
	if !pair.Leaf.IsCA {
		return nil, nil, fmt.Errorf("local CA %s is not a CA certificate", s.path(caFile))
	}
	if left := pair.Leaf.NotAfter.Sub(s.now()); left < 365*24*time.Hour {
		s.log.Warn("the local CA expires soon: remove ca.pem and ca-key.pem to make a new one, then update cloudflared's caPool",
			"not_after", pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return pair.Leaf, pair.PrivateKey.(crypto.Signer), nil
}

func (s *Source) createCA() (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fedigate local CA " + serial.Text(16)[:8], Organization: []string{"fedigate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKeyAndCert(s.path(caKeyFile), s.path(caFile), key, der); err != nil {
		return nil, nil, err
	}
	ca, _ := x509.ParseCertificate(der)
	s.log.Info("local CA created", "file", s.path(caFile), "sha256", Fingerprint(der))
	return ca, key, nil
}

// issueLeaf makes a new leaf signed by the CA, in memory only.
func (s *Source) issueLeaf(ca *x509.Certificate, caKey crypto.Signer, now time.Time) (*tls.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	dns, ips := s.leafNames()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dns[0]},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key, Leaf: leaf}, key, nil
}

func (s *Source) describeSelfSigned(w io.Writer) error {
	cert := s.current.Load()
	if cert == nil {
		return errors.New("no leaf certificate")
	}
	ca, err := filepath.Abs(s.path(caFile))
	if err != nil {
		return err
	}
	in := describe(cert.Leaf, s.path(leafFile))
	fmt.Fprintf(w, "CA certificate:     %s\n", ca)
	fmt.Fprintf(w, "Leaf certificate:   %s\n", in.File)
	fmt.Fprintf(w, "Leaf names:         %s\n", strings.Join(in.Names, ", "))
	fmt.Fprintf(w, "Leaf expires:       %s (renewed automatically %d days before)\n",
		in.NotAfter.UTC().Format(time.RFC3339), int(leafRenewAt.Hours()/24))
	fmt.Fprintf(w, "Leaf SHA-256:       %s\n", in.SHA256)
	fmt.Fprintf(w, "\ncloudflared: put these under originRequest of the ingress rule (instead of noTLSVerify):\n")
	fmt.Fprintf(w, "    caPool: %s\n", ca)
	fmt.Fprintf(w, "    originServerName: %s\n", serverName(s.hosts))
	return nil
}

// ensureStateDir creates dir 0700, or tightens it to 0700 if it is looser.
func ensureStateDir(dir string, log interface{ Warn(string, ...any) }) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls.state_dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("tls.state_dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("tls.state_dir %s is not a directory", dir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("tls.state_dir was readable by others: tightened to 0700", "dir", dir, "was", st.Mode().Perm().String())
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("tls.state_dir: %w", err)
		}
	}
	return nil
}

// writeKeyAndCert writes the key (0600) and certificate (0644), each
// atomically through a temporary file and a rename.
func writeKeyAndCert(keyPath, certPath string, key *ecdsa.PrivateKey, der []byte) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

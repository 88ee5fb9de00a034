package certs

import (
	"crypto/tls"
	"fmt"
	"os"
	"time"
)

// loadFiles reads cert_file and key_file and serves them; a pair that does
// not load, does not match, or has expired is refused and the current one
// kept (and reported once, not at every check).
func (s *Source) loadFiles() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert, mods, err := s.readFiles()
	if !mods.IsZero() {
		s.fileMod = mods
	}
	if err != nil {
		return err
	}
	s.serveFiles(cert)
	return nil
}

// filesMods are the modification times of cert_file and key_file.
type filesMods [2]time.Time

func (m filesMods) IsZero() bool { return m == filesMods{} }

// readFiles loads and checks the pair without serving it; mods are the
// times it was read at (zero when the files could not be stat'ed).
func (s *Source) readFiles() (*tls.Certificate, filesMods, error) {
	mods, err := s.fileTimes()
	if err != nil {
		return nil, filesMods{}, err
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return nil, mods, fmt.Errorf("tls.cert_file %s / tls.key_file %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	now := s.now()
	if now.After(cert.Leaf.NotAfter) {
		return nil, mods, fmt.Errorf("tls.cert_file %s expired on %s", s.cfg.CertFile, cert.Leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(cert.Leaf.NotBefore) {
		return nil, mods, fmt.Errorf("tls.cert_file %s is not valid before %s", s.cfg.CertFile, cert.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, mods, nil
}

// serveFiles makes cert the served pair; the caller holds s.mu.
func (s *Source) serveFiles(cert *tls.Certificate) {
	if cur := s.current.Load(); cur == nil || !cur.Leaf.Equal(cert.Leaf) {
		s.log.Info("certificate loaded", "file", s.cfg.CertFile, "sha256", Fingerprint(cert.Leaf.Raw),
			"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	s.current.Store(cert)
}

func (s *Source) fileTimes() (filesMods, error) {
	var out filesMods
	for i, p := range []string{s.cfg.CertFile, s.cfg.KeyFile} {
		st, err := os.Stat(p)
		if err != nil {
			return out, fmt.Errorf("tls: %w", err)
		}
		out[i] = st.ModTime()
	}
	return out, nil
}

// filesChanged reports whether either file's modification time moved since
// the last load (a renewal by certbot, say).
func (s *Source) filesChanged() bool {
	mods, err := s.fileTimes()
	if err != nil {
		return true // let loadFiles report it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return mods != s.fileMod
}

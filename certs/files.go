package certs

import (
	"crypto/tls"
	"fmt"
	"os"
	"time"
)

// loadFiles reads cert_file and key_file; a pair that does not load, does
// not match, or has expired is refused and the current one kept.
func (s *Source) loadFiles() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mods, err := s.fileTimes()
	if err != nil {
		return err
	}
	s.fileMod = mods // a bad pair is reported once, not at every check
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls.cert_file %s / tls.key_file %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	now := s.now()
	if now.After(cert.Leaf.NotAfter) {
		return fmt.Errorf("tls.cert_file %s expired on %s", s.cfg.CertFile, cert.Leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(cert.Leaf.NotBefore) {
		return fmt.Errorf("tls.cert_file %s is not valid before %s", s.cfg.CertFile, cert.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if cur := s.current.Load(); cur == nil || !cur.Leaf.Equal(cert.Leaf) {
		s.log.Info("certificate loaded", "file", s.cfg.CertFile, "sha256", Fingerprint(cert.Leaf.Raw),
			"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	s.current.Store(&cert)
	return nil
}

func (s *Source) fileTimes() ([2]time.Time, error) {
	var out [2]time.Time
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

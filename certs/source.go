// Package certs owns fedigate's TLS certificates: a local CA and leaf made
// and renewed in tls.state_dir ("self-signed", for a Cloudflare tunnel
// that verifies it with caPool), PEM files re-read on change ("files"),
// and certificates obtained and renewed by ACME through certmagic
// ("acme"). A Source hands the edge a *tls.Config whose GetCertificate
// always reads the current certificate, so renewals and reloads need no
// restart. The listeners live in package proxy.
package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// Options are a Source's hooks; every zero value is documented.
type Options struct {
	Logger *slog.Logger     // nil = slog.Default()
	Now    func() time.Time // nil = time.Now (tests inject a clock)
	// TLSALPNPort is the port of server.listen: ACME's TLS-ALPN-01
	// challenges are answered there through TLSConfig; 0 = TLS-ALPN-01 off.
	TLSALPNPort int
	// HTTPChallengePort is the port of redirect_listen, where HTTPChallenge
	// answers HTTP-01; 0 = HTTP-01 off (fedigate serves no plain HTTP).
	HTTPChallengePort int
	// CheckInterval is how often the leaf's expiry (self-signed), the
	// files' modification time (files) or renewals (acme) are checked;
	// 0 = 1h for self-signed, 5s for files, certmagic's default for acme.
	CheckInterval time.Duration
	// HTTPClient carries ACME's outbound requests (acme mode); nil =
	// certmagic's default (direct, or HTTPS_PROXY from the environment).
	// certmagic v0.25 builds its own client and takes only a proxy
	// function, so the client's Transport must be an *http.Transport: its
	// Proxy (for example the egress) is what is used, and New refuses any
	// other Transport rather than silently bypassing it.
	HTTPClient *http.Client
}

// Info describes one served certificate.
type Info struct {
	Names     []string // DNS names and IP addresses it is valid for
	Issuer    string
	NotBefore time.Time
	NotAfter  time.Time
	SHA256    string // fingerprint of the DER, upper-case hex pairs joined by ':'
	File      string // where it is kept ("" for ACME: certmagic's storage)
}

// Source provides the certificates of one [tls] section.
type Source struct {
	cfg   configs.TLS
	hosts []string
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	current atomic.Pointer[tls.Certificate] // self-signed and files
	mu      sync.Mutex                      // serialises renew/reload
	fileMod filesMods                       // files: cert and key mtimes last loaded
	acme    *acmeSource                     // acme mode
	tickets *ticketer                       // session ticket keys, rotated daily

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New validates cfg and prepares the certificates: self-signed loads or
// creates the CA and leaf; files loads the pair; acme starts obtaining in
// the background (it never blocks and never fails on a failed issuance).
func New(cfg configs.TLS, hosts []string, opts Options) (*Source, error) {
	s := &Source{cfg: cfg, hosts: hosts, log: opts.Logger, now: opts.Now, every: opts.CheckInterval,
		stop: make(chan struct{}), done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	switch cfg.Mode {
	case configs.TLSSelfSigned:
		if s.every == 0 {
			s.every = time.Hour
		}
		err = s.loadSelfSigned()
	case configs.TLSFiles:
		if s.every == 0 {
			s.every = 5 * time.Second
		}
		err = s.loadFiles()
	case configs.TLSACME:
		s.acme, err = newACME(cfg, hosts, opts, s.log)
	default:
		err = fmt.Errorf("tls.mode %q: want %q, %q or %q", cfg.Mode, configs.TLSSelfSigned, configs.TLSFiles, configs.TLSACME)
	}
	if err == nil {
		s.tickets, err = newTicketer(cfg.StateDir, s.now, s.log)
	}
	if err != nil {
		if s.acme != nil {
			s.acme.close()
		}
		return nil, err
	}
	go s.watch()
	return s, nil
}

// TLSConfig is the server side of TLS: 1.2 and up, AEAD suites with
// forward secrecy only, the current certificate on every handshake, and
// session tickets under keys retired within a day (tickets.go).
func (s *Source) TLSConfig() *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
	s.tickets.configure(c)
	if s.acme != nil {
		s.acme.configure(c)
		return c
	}
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if cert := s.current.Load(); cert != nil {
			return cert, nil
		}
		return nil, errors.New("no certificate")
	}
	return c
}

// HTTPChallenge answers ACME HTTP-01 challenges on the redirect listener
// (acme mode) and passes everything else to next.
func (s *Source) HTTPChallenge(next http.Handler) http.Handler {
	if s.acme != nil {
		return s.acme.httpChallenge(next)
	}
	return next
}

// Certificates describes the certificates being served.
func (s *Source) Certificates() []Info {
	if s.acme != nil {
		return s.acme.infos()
	}
	cert := s.current.Load()
	if cert == nil || cert.Leaf == nil {
		return nil
	}
	file := s.cfg.CertFile
	if s.cfg.Mode == configs.TLSSelfSigned {
		file = s.path(leafFile)
	}
	return []Info{describe(cert.Leaf, file)}
}

// Describe writes what `fedigate cert` prints.
func (s *Source) Describe(w io.Writer) error {
	switch s.cfg.Mode {
	case configs.TLSSelfSigned:
		return s.describeSelfSigned(w)
	case configs.TLSACME:
		return s.acme.describe(w)
	}
	for _, in := range s.Certificates() {
		fmt.Fprintf(w, "Certificate:        %s\n", in.File)
		fmt.Fprintf(w, "Names:              %s\n", strings.Join(in.Names, ", "))
		fmt.Fprintf(w, "Issuer:             %s\n", in.Issuer)
		fmt.Fprintf(w, "Expires:            %s\n", in.NotAfter.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "SHA-256:            %s\n", in.SHA256)
		fmt.Fprintf(w, "\ncloudflared (originRequest of the ingress rule):\n    originServerName: %s\n", serverName(s.hosts))
	}
	return nil
}

// Close stops the background checks (and certmagic in acme mode).
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if s.acme != nil {
			s.acme.close()
		}
	})
	return nil
}

// watch renews the self-signed leaf and re-reads changed files until Close.
func (s *Source) watch() {
	defer close(s.done)
	if s.acme != nil {
		<-s.stop
		return
	}
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		var err error
		if s.cfg.Mode == configs.TLSSelfSigned {
			err = s.renewIfNeeded()
		} else if s.filesChanged() {
			err = s.loadFiles()
		}
		if err != nil {
			s.log.Error("certificate check failed; the current certificate is kept", "mode", s.cfg.Mode, "err", err)
		}
	}
}

func describe(c *x509.Certificate, file string) Info {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return Info{Names: names, Issuer: c.Issuer.CommonName, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		SHA256: Fingerprint(c.Raw), File: file}
}

// Fingerprint is the SHA-256 of a DER certificate as "AB:CD:...".
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// serverName is the name cloudflared should verify: the first host, else localhost.
func serverName(hosts []string) string {
	if len(hosts) > 0 {
		return hosts[0]
	}
	return "localhost"
}

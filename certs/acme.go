package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fedigate/fedigate/configs"
)

// acmeSource obtains and renews certificates for the hosts with certmagic,
// using a cache and config of its own (never certmagic's globals).
type acmeSource struct {
	hosts  []string
	mu     sync.Mutex
	failed map[string]string // host -> certmagic's reason for its last failed issuance
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cancel context.CancelFunc
}

func newACME(cfg configs.TLS, hosts []string, opts Options, log *slog.Logger) (*acmeSource, error) {
	if len(hosts) == 0 {
		return nil, errors.New("tls.mode = \"acme\" needs server.hosts")
	}
	proxy, err := acmeProxy(opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	if err := ensureStateDir(cfg.StateDir, log); err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if cfg.ACMECARoot != "" {
		pemBytes, err := os.ReadFile(cfg.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("tls.acme_ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("tls.acme_ca_root %s holds no PEM certificate", cfg.ACMECARoot)
		}
	}
	zl := zap.New(&slogCore{log: log.With("component", "acme")})
	a := &acmeSource{hosts: hosts, failed: make(map[string]string)}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		RenewCheckInterval: opts.CheckInterval,
		Logger:             zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: filepath.Join(cfg.StateDir, "acme")},
		Logger:  zl,
		OnEvent: a.onEvent,
	})
	ca := cfg.ACMECA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	if opts.TLSALPNPort == 0 && opts.HTTPChallengePort == 0 {
		return nil, errors.New("acme: no port to answer challenges on (server.listen for TLS-ALPN-01, redirect_listen for HTTP-01)")
	}
	a.issuer = certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   cfg.ACMEEmail,
		Agreed:                  true,
		TrustedRoots:            roots,
		HTTPProxy:               proxy,
		Logger:                  zl,
		DisableHTTPChallenge:    opts.HTTPChallengePort == 0,
		AltHTTPPort:             opts.HTTPChallengePort,
		DisableTLSALPNChallenge: opts.TLSALPNPort == 0,
		AltTLSALPNPort:          opts.TLSALPNPort,
	})
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	// Stored certificates are loaded and served at once; missing ones are
	// obtained in the background and retried by certmagic on failure.
	if err := a.magic.ManageAsync(ctx, hosts); err != nil {
		cancel()
		a.cache.Stop()
		return nil, fmt.Errorf("acme: %w", err)
	}
	return a, nil
}

// configure points a server TLS config at certmagic: the managed
// certificates, and TLS-ALPN-01 challenges on the main listener. An
// unknown SNI gets no certificate.
func (a *acmeSource) configure(c *tls.Config) {
	c.GetCertificate = a.magic.GetCertificate
	c.NextProtos = append(c.NextProtos, "acme-tls/1")
}

func (a *acmeSource) httpChallenge(next http.Handler) http.Handler {
	return a.issuer.HTTPChallengeHandler(next)
}

func (a *acmeSource) infos() []Info {
	var out []Info
	for _, h := range a.hosts {
		for _, c := range a.cache.AllMatchingCertificates(h) {
			if c.Leaf != nil && !slices.ContainsFunc(out, func(in Info) bool { return in.SHA256 == Fingerprint(c.Leaf.Raw) }) {
				out = append(out, describe(c.Leaf, ""))
			}
		}
	}
	return out
}

func (a *acmeSource) describe(w io.Writer) error {
	fmt.Fprintf(w, "ACME directory:     %s\n", a.issuer.CA)
	for _, h := range a.hosts {
		certs := a.cache.AllMatchingCertificates(h)
		if len(certs) == 0 || certs[0].Leaf == nil {
			reason := "issuance runs in the background"
			a.mu.Lock()
			if e, ok := a.failed[h]; ok {
				reason = e
			}
			a.mu.Unlock()
			fmt.Fprintf(w, "%-20s not yet obtained: %s\n", h+":", reason)
			continue
		}
		in := describe(certs[0].Leaf, "")
		fmt.Fprintf(w, "%-20s issuer %q, expires %s, SHA-256 %s\n", h+":", in.Issuer, in.NotAfter.UTC().Format(time.RFC3339), in.SHA256)
	}
	return nil
}

// onEvent keeps certmagic's reason for each host's last failed issuance
// (for Describe) and forgets it once a certificate is obtained.
func (a *acmeSource) onEvent(_ context.Context, event string, data map[string]any) error {
	host, _ := data["identifier"].(string)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch event {
	case "cert_failed":
		a.failed[host] = fmt.Sprint(data["error"])
	case "cert_obtained":
		delete(a.failed, host)
	}
	return nil
}

// acmeProxy is the proxy function of the ACME client (see Options.HTTPClient).
func acmeProxy(c *http.Client) (func(*http.Request) (*url.URL, error), error) {
	if c == nil {
		return nil, nil
	}
	t, ok := c.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("acme: Options.HTTPClient's Transport is %T; certmagic only takes the Proxy of an *http.Transport", c.Transport)
	}
	if t.Proxy == nil {
		return func(*http.Request) (*url.URL, error) { return nil, nil }, nil // direct, as the client would
	}
	return t.Proxy, nil
}

func (a *acmeSource) close() {
	a.cancel()
	a.cache.Stop()
}

// slogCore sends certmagic's zap logs to slog, one line per event.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.log.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, fields: append(slices.Clip(c.fields), fs...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(slices.Clip(c.fields), fs...) {
		f.AddTo(enc)
	}
	args := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		args = append(args, k, v)
	}
	msg := e.Message
	if e.LoggerName != "" {
		msg = strings.TrimSpace(e.LoggerName + ": " + msg)
	}
	c.log.Log(context.Background(), slogLevel(e.Level), msg, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

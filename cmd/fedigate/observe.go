package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/fedigate/fedigate/admin"
	"github.com/fedigate/fedigate/certs"
)

// watchCertExpiry keeps the certificate-expiry metric current (renewals
// and reloads change it) until stop is closed. It is given the source
// and the metrics, not the gateway: a reload rewrites the gateway's
// fields while this runs.
func watchCertExpiry(src *certs.Source, m *admin.Metrics, stop <-chan struct{}) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		for _, in := range src.Certificates() {
			if len(in.Names) > 0 {
				m.CertExpiry(in.Names[0], in.NotAfter)
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// servedCerts lists the served certificates for the status page ([tls]
// is never reloaded, so src stays the one in use).
func servedCerts(src *certs.Source) func() []admin.Cert {
	return func() []admin.Cert {
		var out []admin.Cert
		for _, in := range src.Certificates() {
			if len(in.Names) > 0 {
				out = append(out, admin.Cert{Name: in.Names[0], NotAfter: in.NotAfter})
			}
		}
		return out
	}
}

// portOf is the port of a listen address, 0 when there is none.
func portOf(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

// backendHostPort is the host:port a backend URL connects to.
func backendHostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("bad backend URL %q", raw)
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return net.JoinHostPort(u.Hostname(), "80"), nil
}

// redisLog sends go-redis's own log lines (dial failures while Redis is
// down) to slog at debug: the limiter logs each up/down transition once.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.Debug("redis client", "msg", fmt.Sprintf(format, v...))
}

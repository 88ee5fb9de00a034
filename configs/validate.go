package configs

import (
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// validate checks the decoded config, records every fault in fs and
// normalises what has one spelling (host names lower case, methods upper
// case, header names canonical). ruleKeys maps a file rule's name to its key.
func validate(c *Config, fs *faults, ruleKeys map[string]string) {
	validateServer(c, fs)
	validateTLS(c, fs)
	validateBackend(c, fs)
	validateRateLimit(c, fs, ruleKeys)
	validateSignup(c, fs)
	validateEgress(c, fs)
	validateAdmin(c, fs)
	validateAddressesDistinct(c, fs)
}

func validateServer(c *Config, fs *faults) {
	s := &c.Server
	checkListen(fs, "server.listen", s.Listen, false)
	if s.RedirectListen != "" {
		checkListen(fs, "server.redirect_listen", s.RedirectListen, false)
	}
	for i, h := range s.Hosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if !validHostname(h) {
			fs.bad(key("server.hosts", i), "%q is not a host name: write the bare name, like \"social.example\" (no scheme, port or path)", s.Hosts[i])
		}
		s.Hosts[i] = h
	}
	for i, h := range s.ClientIPHeaders {
		if !validToken(h) {
			fs.bad(key("server.client_ip_headers", i), "%q is not a header name", h)
		}
	}
	positive(fs, "server.max_request_body", s.MaxRequestBody)
	if s.MaxHeaderBytes < 4<<10 {
		fs.bad("server.max_header_bytes", "%d bytes is too small for real browsers: use at least \"4KB\"", s.MaxHeaderBytes)
	}
	positiveDuration(fs, "server.read_header_timeout", s.ReadHeaderTimeout)
	positiveDuration(fs, "server.idle_timeout", s.IdleTimeout)
	positiveDuration(fs, "server.shutdown_timeout", s.ShutdownTimeout)
	if strings.ContainsAny(s.HSTS, "\r\n") {
		fs.bad("server.hsts", "must be one line")
	}
}

func validateTLS(c *Config, fs *faults) {
	t := &c.TLS
	if t.StateDir == "" {
		fs.bad("tls.state_dir", "must name a directory (keys, certificates and secrets are kept there)")
	}
	switch t.Mode {
	case TLSSelfSigned, TLSACME:
		if t.CertFile != "" || t.KeyFile != "" {
			fs.contradiction("tls.cert_file", "cert_file/key_file are set but tls.mode is %q: set mode = \"files\" or remove them", t.Mode)
		}
	case TLSFiles:
		for _, k := range []struct{ key, path string }{{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
			if k.path == "" {
				fs.contradiction(k.key, "tls.mode = \"files\" needs %s", k.key)
			} else if _, err := os.Stat(k.path); err != nil {
				fs.bad(k.key, "cannot read %q: %v", k.path, unwrapPathErr(err))
			}
		}
	default:
		fs.bad("tls.mode", "%q: want \"self-signed\", \"files\" or \"acme\"", t.Mode)
	}
	if t.Mode == TLSACME {
		if len(c.Server.Hosts) == 0 {
			fs.contradiction("tls.mode", "tls.mode = \"acme\" needs server.hosts: the names to get certificates for")
		}
		if t.ACMECA != "" {
			checkURL(fs, "tls.acme_ca", t.ACMECA, "https")
		}
		if t.ACMECARoot != "" {
			if _, err := os.Stat(t.ACMECARoot); err != nil {
				fs.bad("tls.acme_ca_root", "cannot read %q: %v", t.ACMECARoot, unwrapPathErr(err))
			}
		}
		if t.ACMEEmail != "" && !strings.Contains(t.ACMEEmail, "@") {
			fs.bad("tls.acme_email", "%q is not an e-mail address", t.ACMEEmail)
		}
	} else if t.ACMEEmail != "" || t.ACMECA != "" || t.ACMECARoot != "" {
		fs.contradiction("tls.acme_email", "acme_* keys are set but tls.mode is %q", t.Mode)
	}
}

func validateBackend(c *Config, fs *faults) {
	b := &c.Backend
	checkBackendURL(fs, "backend.web", b.Web, false)
	checkBackendURL(fs, "backend.streaming", b.Streaming, true)
	if b.StaticRoot != "" {
		if st, err := os.Stat(b.StaticRoot); err != nil || !st.IsDir() {
			fs.bad("backend.static_root", "%q is not a directory", b.StaticRoot)
		}
	}
	if b.EnvFile != "" {
		if _, err := os.Stat(b.EnvFile); err != nil {
			fs.bad("backend.env_file", "cannot read %q: %v", b.EnvFile, unwrapPathErr(err))
		}
	}
	positiveDuration(fs, "backend.connect_timeout", b.ConnectTimeout)
	positiveDuration(fs, "backend.response_timeout", b.ResponseTimeout)
	positiveDuration(fs, "backend.idle_timeout", b.IdleTimeout)
	positive(fs, "backend.max_idle_conns", int64(b.MaxIdleConns))
	if b.MaxResponseHeaderBytes < 1<<10 || b.MaxResponseHeaderBytes > 16<<20 {
		fs.bad("backend.max_response_header_bytes", "must be between 1KB and 16MB, like \"64KB\"")
	}
}

func validateAdmin(c *Config, fs *faults) {
	a := &c.Admin
	if a.Listen != "" {
		checkListen(fs, "admin.listen", a.Listen, !a.AllowRemote)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		fs.bad("log.format", "%q: want \"text\" or \"json\"", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		fs.bad("log.level", "%q: want \"debug\", \"info\", \"warn\" or \"error\"", c.Log.Level)
	}
}

// validateAddressesDistinct refuses two listeners on one address.
func validateAddressesDistinct(c *Config, fs *faults) {
	seen := map[string]string{}
	for _, l := range []struct{ key, addr string }{
		{"server.listen", c.Server.Listen}, {"server.redirect_listen", c.Server.RedirectListen},
		{"egress.listen", c.Egress.Listen}, {"admin.listen", c.Admin.Listen},
	} {
		if l.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			continue
		}
		if other, dup := seen[port]; dup && port != "0" {
			fs.contradiction(l.key, "port %s is also used by %s", port, other)
		}
		seen[port] = l.key
	}
}

// checkListen checks a "host:port" listen address; loopbackOnly refuses
// anything but a loopback host.
func checkListen(fs *faults, k, addr string, loopbackOnly bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fs.bad(k, "%q is not host:port (write \":443\" for every address, \"127.0.0.1:9180\" for one)", addr)
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		fs.bad(k, "%q: port must be a number from 0 to 65535", addr)
		return
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			fs.bad(k, "%q: the host must be an IP address (or empty for every address)", addr)
			return
		}
	}
	if loopbackOnly && !isLoopbackHost(host) {
		fs.bad(k, "%q is reachable from other machines: use a loopback address like 127.0.0.1, or set allow_remote = true", addr)
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func checkBackendURL(fs *faults, k, raw string, optional bool) {
	if raw == "" {
		if !optional {
			fs.bad(k, "must be the backend's URL, like \"http://127.0.0.1:3000\"")
		}
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fs.bad(k, "%q is not an http:// or https:// URL with a host", raw)
		return
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		fs.bad(k, "%q: give only scheme, host and port; the path and query of each request are passed as they are", raw)
	}
}

func checkURL(fs *faults, k, raw string, schemes ...string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		fs.bad(k, "%q is not an absolute URL", raw)
		return false
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return true
		}
	}
	fs.bad(k, "%q: the scheme must be %s", raw, strings.Join(schemes, " or "))
	return false
}

func positive(fs *faults, k string, n int64) {
	if n <= 0 {
		fs.bad(k, "must be more than 0")
	}
}

func positiveDuration(fs *faults, k string, d time.Duration) {
	if d <= 0 {
		fs.bad(k, "must be more than 0, like \"30s\"")
	}
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 127 || !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("!#$%&'*+^`|~", r)) {
			return false
		}
	}
	return true
}

func key(base string, i int) string { return base + "." + strconv.Itoa(i) }

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

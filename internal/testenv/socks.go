package testenv

import (
	"testing"
)

// Microsocks starts Debian's microsocks (a SOCKS5 server without
// authentication) on a free loopback port. Outgoing connections leave from
// bindAddr when it is not "" (microsocks -b), so a test destination can
// tell the SOCKS server's connections from direct ones.
func Microsocks(t testing.TB, bindAddr string) *Process {
	t.Helper()
	return MicrosocksAt(t, Loopback(t), bindAddr)
}

// MicrosocksAt starts microsocks on addr ("127.0.0.1:port").
func MicrosocksAt(t testing.TB, addr, bindAddr string) *Process {
	t.Helper()
	bin := Binary(t, "microsocks", "microsocks")
	host, port := splitHostPort(t, addr)
	args := []string{"-i", host, "-p", port}
	if bindAddr != "" {
		args = append(args, "-b", bindAddr)
	}
	return Start(t, addr, bin, args...)
}

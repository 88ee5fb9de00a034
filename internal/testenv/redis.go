package testenv

import (
	"testing"
)

// Redis starts a private redis-server on a free loopback port, with no
// persistence, and returns it; Addr is host:port. The server is stopped
// when the test ends. Restart it on the same port with RedisAt.
func Redis(t testing.TB) *Process {
	t.Helper()
	return RedisAt(t, Loopback(t))
}

// RedisAt starts redis-server listening on addr ("127.0.0.1:port").
func RedisAt(t testing.TB, addr string) *Process {
	t.Helper()
	bin := Binary(t, "redis-server", "redis-server")
	host, port := splitHostPort(t, addr)
	return Start(t, addr, bin,
		"--bind", host, "--port", port,
		"--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--protected-mode", "no")
}

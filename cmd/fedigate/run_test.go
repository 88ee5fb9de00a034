package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

const (
	sigterm = syscall.SIGTERM
	sighup  = syscall.SIGHUP
)

// clientTo is an HTTPS client for https://social.test/... that connects to
// the gateway at addr (trust is tested by the curl test).
func clientTo(addr string) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "social.test", InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// Without ./fedigate.toml the built-in default runs and the log says so.
func TestRunBuiltinDefault(t *testing.T) {
	dir := t.TempDir()
	g := &gatewayProc{done: make(chan struct{})}
	g.cmd = execIn(dir, binary)
	g.cmd.Stdout, g.cmd.Stderr = g, g
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	defer func() { _ = g.cmd.Process.Kill(); <-g.done }()
	g.waitLog(t, "built-in default")
	if err := testenv.WaitListening("127.0.0.1:8443", 10*time.Second, g.done); err != nil {
		t.Fatalf("built-in default does not listen on :8443: %v\n%s", err, g.Logs())
	}
	if _, err := os.Stat(filepath.Join(dir, "fedigate-state")); err != nil {
		t.Errorf("state dir not made: %v", err)
	}
	g.signal(t, sigterm)
	if c := g.wait(t, 15*time.Second); c != 0 {
		t.Errorf("exit %d", c)
	}
}

// SIGHUP applies a good config, refuses a bad one (the running config
// kept), and a request in flight across both reloads completes.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	_, one := startBackend(t, "one")
	_, two := startBackend(t, "two")
	addr := testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, "", one, ""))
	g := startGateway(t, dir, addr)
	c := clientTo(addr)
	get := func(path string) string {
		resp, err := c.Get("https://social.test" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return readAll(t, resp.Body)
	}
	if body := get("/x"); !strings.Contains(body, `"backend":"one"`) {
		t.Fatalf("before reload: %s", body)
	}
	inflight := make(chan string, 1)
	go func() {
		resp, err := c.Get("https://social.test/slow?sleep=1500ms")
		if err != nil {
			inflight <- err.Error()
			return
		}
		defer resp.Body.Close()
		b := make([]byte, 256)
		n, _ := resp.Body.Read(b)
		inflight <- resp.Status + " " + string(b[:n])
	}()
	time.Sleep(200 * time.Millisecond)
	writeConfig(t, dir, baseConfig(dir, addr, "", two, ""))
	g.signal(t, sighup)
	g.waitLog(t, "config reloaded")
	if body := get("/x"); !strings.Contains(body, `"backend":"two"`) {
		t.Fatalf("after reload: %s", body)
	}
	writeConfig(t, dir, baseConfig(dir, addr, "", one, "[signup]\npow_difficulty = \"hard\"\n"))
	g.signal(t, sighup)
	g.waitLog(t, "reload refused")
	if !strings.Contains(g.Logs(), "fedigate.toml:") {
		t.Errorf("refused reload does not name file:line:\n%s", g.Logs())
	}
	if body := get("/x"); !strings.Contains(body, `"backend":"two"`) {
		t.Fatalf("after a bad reload: %s", body)
	}
	if got := <-inflight; !strings.HasPrefix(got, "200") || !strings.Contains(got, `"backend":"one"`) {
		t.Fatalf("request in flight across reloads: %s", got)
	}
}

// SIGTERM lets a request in flight finish, then exits 0.
func TestSIGTERMDrains(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBackend(t, "web")
	addr := testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, "", backend, ""))
	g := startGateway(t, dir, addr)
	done := make(chan string, 1)
	go func() {
		resp, err := clientTo(addr).Get("https://social.test/slow?sleep=1s")
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		done <- resp.Status
	}()
	time.Sleep(300 * time.Millisecond)
	g.signal(t, sigterm)
	if got := <-done; !strings.HasPrefix(got, "200") {
		t.Fatalf("in-flight request: %s", got)
	}
	if c := g.wait(t, 15*time.Second); c != 0 {
		t.Fatalf("exit %d", c)
	}
	if !strings.Contains(g.Logs(), "stopped") {
		t.Errorf("log:\n%s", g.Logs())
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

// run -cpuprofile writes a profile (gzip, as pprof) when the run ends on
// SIGTERM; a path it cannot create stops the run before it starts.
func TestRunCPUProfile(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBackend(t, "web")
	addr := testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, "", backend, ""))
	prof := filepath.Join(dir, "cpu.pprof")
	g := &gatewayProc{done: make(chan struct{})}
	g.cmd = execIn(dir, binary, "run", "-config", filepath.Join(dir, "fedigate.toml"), "-cpuprofile", prof)
	g.cmd.Stdout, g.cmd.Stderr = g, g
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	defer func() { _ = g.cmd.Process.Kill(); <-g.done }()
	if err := testenv.WaitListening(addr, 15*time.Second, g.done); err != nil {
		t.Fatalf("%v\n%s", err, g.Logs())
	}
	getAll(t, clientTo(addr), 50, "/bench/")
	g.signal(t, sigterm)
	if c := g.wait(t, 15*time.Second); c != 0 {
		t.Fatalf("exit %d", c)
	}
	b, err := os.ReadFile(prof)
	if err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("profile: %v, %d bytes", err, len(b))
	}

	code, _, stderr := run(t, dir, "run", "-config", filepath.Join(dir, "fedigate.toml"), "-cpuprofile", filepath.Join(dir, "no", "such", "dir"))
	if code != 1 || !strings.Contains(stderr, "-cpuprofile") {
		t.Fatalf("bad profile path: exit %d, %q", code, stderr)
	}
}

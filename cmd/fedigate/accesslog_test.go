package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

// getAll sends n GETs to path over a few kept-alive connections and fails
// on any answer but 200.
func getAll(t *testing.T, c *http.Client, n int, path string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				resp, err := c.Get("https://social.test" + path + strconv.Itoa(i))
				if err != nil {
					errs <- err.Error()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- resp.Status
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// Access lines still in the buffer when SIGTERM comes are written before
// the exit, and those queued at a SIGHUP before the reload is logged.
func TestAccessLogNothingLostOnSIGHUPAndSIGTERM(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBackend(t, "web")
	addr := testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, "", backend, ""))
	g := startGateway(t, dir, addr)
	c := clientTo(addr)
	const n = 300
	getAll(t, c, n, "/bench/a")
	g.signal(t, sighup)
	g.waitLog(t, "config reloaded")
	before, _, _ := strings.Cut(g.Logs(), "config reloaded")
	if got := strings.Count(before, "msg=request "); got != n {
		t.Errorf("%d access lines before the reload line, want %d", got, n)
	}
	getAll(t, c, n, "/bench/b")
	g.signal(t, sigterm)
	if code := g.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	logs := g.Logs()
	if got := strings.Count(logs, "msg=request "); got != 2*n {
		t.Fatalf("%d access lines after SIGTERM, want %d:\n%s", got, 2*n, logs)
	}
	stopped := strings.Index(logs, "msg=stopped")
	if last := strings.LastIndex(logs, "msg=request "); stopped < last {
		t.Errorf("access lines after \"stopped\"")
	}
}

// A stderr nobody reads (a stuck journal or disk) never stalls requests:
// access lines are dropped, counted in the metric, and logged once.
func TestAttackStuckStderrNeverBlocksRequests(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBackend(t, "web")
	addr, adminAddr := testenv.Loopback(t), testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, adminAddr, backend, ""))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(binary, "run", "-config", dir+"/fedigate.toml")
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	if err := testenv.WaitListening(addr, 15*time.Second, exited); err != nil {
		t.Fatal(err)
	}
	// 4 KiB lines, on a path no rule logs: the pipe (64 KiB) and the buffer
	// (2 MiB) fill in ~550
	long := "/bench/" + strings.Repeat("x", 4096) + "/"
	start := time.Now()
	getAll(t, clientTo(addr), 1500, long)
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("1500 requests took %v on a stuck stderr", d)
	}
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var dropped float64
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "fedigate_accesslog_dropped_lines_total "); ok {
			dropped, _ = strconv.ParseFloat(v, 64)
		}
	}
	if dropped < 500 {
		t.Fatalf("dropped lines metric %v, want hundreds", dropped)
	}
	if err := cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	logs := readAll(t, pr) // reading unsticks it; EOF at exit
	if n := strings.Count(logs, "buffer full"); n != 1 {
		t.Errorf("%d drop warnings, want 1", n)
	}
	if got := strings.Count(logs, "msg=request ") + int(dropped); got < 1500 {
		t.Errorf("%d lines written + %v dropped < 1500 requests", strings.Count(logs, "msg=request "), dropped)
	}
}

package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

var binary string // the fedigate binary under test, built once

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fedigate-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "fedigate")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fedigate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary to completion and returns its exit code and output.
func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// gatewayProc is a running `fedigate run`.
type gatewayProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	code int
}

func (g *gatewayProc) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.Write(b)
}

func (g *gatewayProc) Logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.String()
}

// waitLog waits until the log contains s.
func (g *gatewayProc) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.Logs(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gatewayProc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := g.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// wait waits for exit and returns the exit code.
func (g *gatewayProc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-g.done:
		return g.code
	case <-time.After(within):
		t.Fatalf("fedigate did not exit within %v:\n%s", within, g.Logs())
		return -1
	}
}

// startGateway runs `fedigate run -config dir/fedigate.toml` and waits
// until addr, and the addresses in also, accept connections.
func startGateway(t *testing.T, dir, addr string, also ...string) *gatewayProc {
	t.Helper()
	return startGatewayBinary(t, binary, dir, addr, also...)
}

// startGatewayBinary runs bin (a build other than the race-enabled one).
// also are more addresses to wait for (the admin listener starts after
// the edge's).
func startGatewayBinary(t *testing.T, bin, dir, addr string, also ...string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{done: make(chan struct{})}
	g.cmd = exec.Command(bin, "run", "-config", filepath.Join(dir, "fedigate.toml"))
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = g, g
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := g.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			g.code = ee.ExitCode()
		}
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			_ = g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("fedigate log:\n%s", g.Logs())
		}
	})
	for _, a := range append([]string{addr}, also...) {
		if err := testenv.WaitListening(a, 15*time.Second, g.done); err != nil {
			t.Fatalf("fedigate did not listen on %s: %v\n%s", a, err, g.Logs())
		}
	}
	return g
}

// baseConfig is a config for tests: everything on loopback, state in dir.
func baseConfig(dir, listen, admin, backend string, extra string) string {
	return fmt.Sprintf(`preset = "mastodon"
[server]
listen = %q
http3 = false
hosts = ["social.test"]
shutdown_timeout = "10s"
[tls]
state_dir = %q
[backend]
web = %q
streaming = ""
[egress]
listen = ""
[admin]
listen = %q
%s`, listen, filepath.Join(dir, "state"), backend, admin, extra)
}

func writeConfig(t *testing.T, dir, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "fedigate.toml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// caPath runs `fedigate cert` and returns the CA file it prints and the
// fingerprint it names.
func caPath(t *testing.T, dir string) (string, string) {
	t.Helper()
	code, out, errOut := run(t, dir, "cert", "-config", filepath.Join(dir, "fedigate.toml"))
	if code != 0 {
		t.Fatalf("fedigate cert: exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`caPool:\s*(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("cert output has no caPool line:\n%s", out)
	}
	fp := regexp.MustCompile(`(?i)([0-9a-f]{2}(:?[0-9a-f]{2}){31})`).FindString(out)
	if fp == "" {
		t.Fatalf("cert output has no SHA-256 fingerprint:\n%s", out)
	}
	if !strings.Contains(out, "originServerName: social.test") {
		t.Errorf("cert output lacks originServerName: social.test:\n%s", out)
	}
	return m[1], strings.ToLower(strings.ReplaceAll(fp, ":", ""))
}

// curl fetches url with the real curl, trusting only caFile, resolving
// social.test to the gateway; it returns the status line's code and body.
func curl(t *testing.T, caFile, url, gatewayAddr string, args ...string) (string, string) {
	t.Helper()
	curlBin := testenv.Binary(t, "curl", "curl")
	_, port, _ := net.SplitHostPort(gatewayAddr)
	full := append([]string{"-sS", "--max-time", "10", "--cacert", caFile,
		"--resolve", "social.test:" + port + ":127.0.0.1", "-o", "-", "-w", "\n%{http_code}"}, args...)
	full = append(full, url)
	out, err := exec.Command(curlBin, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	return s[i+1:], s[:i]
}

// leafFingerprint is the SHA-256 of the certificate the gateway serves.
func leafFingerprint(t *testing.T, caFile, addr string) string {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CA file holds no certificate")
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "social.test", RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS against the printed CA: %v", err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:])
}

func pemFirstCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// backendRecorder is a loopback backend that records what it was sent.
type backendRecorder struct {
	mu   sync.Mutex
	seen []*http.Request
	name string
}

func (b *backendRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.seen = append(b.seen, r.Clone(r.Context()))
	b.mu.Unlock()
	if d := r.URL.Query().Get("sleep"); d != "" {
		dur, _ := time.ParseDuration(d)
		time.Sleep(dur)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"backend":%q,"path":%q}`, b.name, r.URL.RequestURI())
}

func (b *backendRecorder) requests() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.seen...)
}

func startBackend(t *testing.T, name string) (*backendRecorder, string) {
	t.Helper()
	rec := &backendRecorder{name: name}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return rec, "http://" + ln.Addr().String()
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func execIn(dir, bin string, args ...string) *exec.Cmd {
	c := exec.Command(bin, args...)
	c.Dir = dir
	return c
}

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// writeCertPair writes a self-made certificate for social.test whose
// common name is cn, as tls.cert_file and tls.key_file in dir.
func writeCertPair(t *testing.T, dir, cn string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{"social.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// reloadSetup is a gateway run in this process from dir/fedigate.toml,
// with its certificate from files, so a test can change every part a
// reload touches and look at each.
type reloadSetup struct {
	dir, listen, admin, backend, staticRoot string
	pow, apiLimit                           int
	extra                                   string
}

func (s reloadSetup) text() string {
	static := ""
	if s.staticRoot != "" {
		static = fmt.Sprintf("static_root = %q\n", s.staticRoot)
	}
	return fmt.Sprintf(`preset = "mastodon"
[server]
listen = %q
http3 = false
hosts = ["social.test"]
shutdown_timeout = "2s"
[tls]
mode = "files"
cert_file = %q
key_file = %q
state_dir = %q
[backend]
web = %q
streaming = ""
%s[egress]
listen = ""
[admin]
listen = %q
[signup]
pow_difficulty = %d
[[ratelimit.rule]]
name = "api-unauthenticated"
paths = ["/api/*"]
limit = %d
period = "5m"
unauthenticated = true
%s`, s.listen, filepath.Join(s.dir, "cert.pem"), filepath.Join(s.dir, "key.pem"), filepath.Join(s.dir, "state"),
		s.backend, static, s.admin, s.pow, s.apiLimit, s.extra)
}

func (s reloadSetup) load(t *testing.T) *configs.Config {
	t.Helper()
	writeConfig(t, s.dir, s.text())
	cfg, err := configs.Load(filepath.Join(s.dir, "fedigate.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startInProcess builds and starts the gateway of cfg; it is shut down
// when the test ends.
func startInProcess(t *testing.T, cfg *configs.Config) (*gateway, *testenv.LogBuffer) {
	t.Helper()
	logs := &testenv.LogBuffer{}
	g, err := buildGateway(cfg, logs.Logger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.start(); err != nil {
		_ = g.shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.shutdown(ctx)
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	return g, logs
}

// busyAddr is a loopback address another listener holds until the test
// ends.
func busyAddr(t *testing.T) string {
	t.Helper()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	return busy.Addr().String()
}

// servedCN is the common name of the certificate the edge at addr serves.
func servedCN(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "social.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// edgeState is what a client sees of the running gateway: the backend a
// request reaches, the rate limit's counts, and the gate's difficulty.
type edgeState struct {
	backend, limit, remaining, bits string
}

func observe(t *testing.T, addr string) edgeState {
	t.Helper()
	c := clientTo(addr)
	resp, err := c.Get("https://social.test/api/v1/timelines/public")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	st := edgeState{limit: resp.Header.Get("X-RateLimit-Limit"), remaining: resp.Header.Get("X-RateLimit-Remaining")}
	if i := strings.Index(body, `"backend":"`); i >= 0 {
		st.backend = strings.SplitN(body[i+len(`"backend":"`):], `"`, 2)[0]
	}
	resp, err = c.Get("https://social.test/.fedigate/challenge?return=/auth/sign_up")
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp.Body)
	resp.Body.Close()
	if i := strings.Index(page, `data-bits="`); i >= 0 {
		st.bits = strings.SplitN(page[i+len(`data-bits="`):], `"`, 2)[0]
	}
	return st
}

// A reload that fails late, at the edge, after the certificates were
// read and the limiter and gate were built, leaves everything exactly as
// it was: the certificate served, the rate-limit counts, the gate and the
// routes. Each fault is one only the last constructor sees. The same
// config without the fault then reloads, so each of those parts would
// have changed.
func TestReloadFailingLateLeavesCertsLimitsGateAndRoutes(t *testing.T) {
	for _, fault := range []struct {
		name   string
		inject func(t *testing.T, s *reloadSetup)
		want   string
	}{
		{"listen moved to a port in use", func(t *testing.T, s *reloadSetup) { s.listen = busyAddr(t) }, "address already in use"},
		{"500.html in static_root is unreadable", func(t *testing.T, s *reloadSetup) {
			s.staticRoot = t.TempDir()
			if err := os.Mkdir(filepath.Join(s.staticRoot, "500.html"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "500.html"},
	} {
		t.Run(fault.name, func(t *testing.T) {
			dir := t.TempDir()
			_, one := startBackend(t, "one")
			_, two := startBackend(t, "two")
			writeCertPair(t, dir, "cert-one")
			s := reloadSetup{dir: dir, listen: testenv.Loopback(t), admin: testenv.Loopback(t), backend: one, pow: 16, apiLimit: 300}
			g, _ := startInProcess(t, s.load(t))
			observe(t, s.listen)
			before := observe(t, s.listen)
			if before != (edgeState{backend: "one", limit: "300", remaining: "298", bits: "16"}) || servedCN(t, s.listen) != "cert-one" {
				t.Fatalf("before the reload: %+v %s", before, servedCN(t, s.listen))
			}
			limiter, guard := g.limiter, g.guard

			good := s
			good.backend, good.pow, good.apiLimit = two, 18, 500
			writeCertPair(t, dir, "cert-two")
			bad := good
			fault.inject(t, &bad)
			err := g.reload(bad.load(t))
			if err == nil || !strings.Contains(err.Error(), fault.want) {
				t.Fatalf("reload with the late fault: %v", err)
			}
			if g.limiter != limiter || g.guard != guard || g.cfg.Backend.Web != one {
				t.Fatal("the failed reload swapped a part")
			}
			after := observe(t, s.listen)
			if want := (edgeState{backend: "one", limit: "300", remaining: "297", bits: "16"}); after != want {
				t.Fatalf("after the failed reload: %+v, want %+v", after, want)
			}
			if cn := servedCN(t, s.listen); cn != "cert-one" {
				t.Fatalf("after the failed reload the edge serves %s", cn)
			}

			if err := g.reload(good.load(t)); err != nil {
				t.Fatalf("the same reload without the fault: %v", err)
			}
			if got := observe(t, s.listen); got.backend != "two" || got.limit != "500" || got.bits != "18" || servedCN(t, s.listen) != "cert-two" {
				t.Fatalf("after the good reload: %+v %s", got, servedCN(t, s.listen))
			}
		})
	}
}

// metricValue is the value of one unlabelled metric on the admin
// listener's /metrics.
func metricValue(t *testing.T, adminAddr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, line := range strings.Split(readAll(t, resp.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// One Redis timeout is not an open breaker: with Redis paused (SIGSTOP:
// it accepts and never answers), one limited request counts a store
// error and the breaker metric stays 0; the failures that trip the
// breaker set it to 1; once Redis answers again (SIGCONT) the probe
// closes the breaker and the metric goes back to 0 by itself.
func TestBreakerMetricAfterOneRedisTimeoutStaysClosed(t *testing.T) {
	redis := testenv.Redis(t)
	dir := t.TempDir()
	_, backend := startBackend(t, "web")
	writeCertPair(t, dir, "cert")
	s := reloadSetup{dir: dir, listen: testenv.Loopback(t), admin: testenv.Loopback(t), backend: backend, pow: 16, apiLimit: 300,
		extra: fmt.Sprintf("[ratelimit]\nstore = \"redis\"\nredis_url = \"redis://%s/0\"\nstore_timeout = \"200ms\"\non_store_error = \"allow\"\n", redis.Addr)}
	startInProcess(t, s.load(t))
	c := clientTo(s.listen)
	get := func() {
		t.Helper()
		resp, err := c.Get("https://social.test/api/v1/timelines/public")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("with on_store_error = allow: %s", resp.Status)
		}
	}
	const breaker, storeErrors = "fedigate_ratelimit_store_breaker_open", "fedigate_ratelimit_store_errors_total"
	get() // Redis answers: the pool holds a connection, the script is loaded
	if v := metricValue(t, s.admin, breaker); v != "0" {
		t.Fatalf("breaker with Redis up: %s", v)
	}
	redis.Pause(t)
	defer redis.Resume(t)
	get()
	if v := metricValue(t, s.admin, storeErrors); v != "1" {
		t.Fatalf("store errors after one timeout: %s", v)
	}
	if v := metricValue(t, s.admin, breaker); v != "0" {
		t.Fatalf("breaker after ONE Redis timeout: %s, want 0 (it opens after several failures in a row)", v)
	}
	get()
	get()
	if v := metricValue(t, s.admin, breaker); v != "1" {
		t.Fatalf("breaker after three timeouts in a row: %s, want 1", v)
	}
	redis.Resume(t)
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, s.admin, breaker) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("breaker metric still 1 ten seconds after Redis answers again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	get()
	if v := metricValue(t, s.admin, storeErrors); v != "3" {
		t.Fatalf("store errors after Redis came back: %s, want still 3", v)
	}
}

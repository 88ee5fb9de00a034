package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

// doctorSetup is a complete, healthy set of parts on loopback.
type doctorSetup struct {
	dir, listen, egress, web, streaming, redis, socks, probe, envFile string
	warp                                                              string // what the probe answers: "on" or "off"
}

func newDoctorSetup(t *testing.T) *doctorSetup {
	t.Helper()
	s := &doctorSetup{dir: t.TempDir(), listen: testenv.Loopback(t), egress: testenv.Loopback(t), warp: "on"}
	_, s.web = startBackend(t, "web")
	_, s.streaming = startBackend(t, "streaming")
	s.redis = testenv.Redis(t).Addr
	s.socks = testenv.Microsocks(t, "127.0.0.2").Addr
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "fl=1\nip=%s\ncolo=TST\nwarp=%s\n", host, s.warp)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.probe = ln.Addr().String()
	s.envFile = filepath.Join(s.dir, ".env.production")
	os.WriteFile(s.envFile, []byte("LOCAL_DOMAIN=social.test\nhttp_proxy=http://"+s.egress+"\n"), 0o600)
	return s
}

func (s *doctorSetup) write(t *testing.T) string {
	t.Helper()
	path := filepath.Join(s.dir, "fedigate.toml")
	text := fmt.Sprintf(`preset = "mastodon"
[server]
listen = %q
hosts = ["social.test"]
[tls]
state_dir = %q
[backend]
web = %q
streaming = %q
env_file = %q
[ratelimit]
store = "redis"
redis_url = "redis://%s/0"
[egress]
listen = %q
upstream = "socks5://%s"
allow = [%q]
probe_url = "http://%s/cdn-cgi/trace"
connect_timeout = "2s"
[admin]
listen = ""
`, s.listen, filepath.Join(s.dir, "state"), s.web, s.streaming, s.envFile, s.redis, s.egress, s.socks, s.probe, s.probe)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDoctorGoodSetup(t *testing.T) {
	s := newDoctorSetup(t)
	code, out, errOut := run(t, s.dir, "doctor", "-config", s.write(t))
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"ok   config", "ok   port server.listen", "ok   certificate", "ok   backend web", "ok   backend streaming",
		"ok   redis", "version", "ok   socks upstream", "ok   egress probe", "ip=127.0.0.2", "warp=on", "ok   backend env_file"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// Each broken part fails its own line, says how to mend it, and the exit is 1.
func TestDoctorBrokenParts(t *testing.T) {
	cases := map[string]struct {
		breakIt func(t *testing.T, s *doctorSetup)
		line    string
	}{
		"backend web down": {func(t *testing.T, s *doctorSetup) { s.web = "http://" + testenv.Loopback(t) }, "FAIL backend web"},
		"streaming down":   {func(t *testing.T, s *doctorSetup) { s.streaming = "http://" + testenv.Loopback(t) }, "FAIL backend streaming"},
		"redis down":       {func(t *testing.T, s *doctorSetup) { s.redis = testenv.Loopback(t) }, "FAIL redis"},
		"socks down":       {func(t *testing.T, s *doctorSetup) { s.socks = testenv.Loopback(t) }, "FAIL socks upstream"},
		"warp off":         {func(t *testing.T, s *doctorSetup) { s.warp = "off" }, "FAIL egress probe"},
		"env without proxy": {func(t *testing.T, s *doctorSetup) {
			os.WriteFile(s.envFile, []byte("LOCAL_DOMAIN=social.test\n"), 0o600)
		}, "FAIL backend env_file"},
		"port taken": {func(t *testing.T, s *doctorSetup) {
			ln, err := net.Listen("tcp", s.listen)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, "FAIL port server.listen"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := newDoctorSetup(t)
			c.breakIt(t, s)
			code, out, _ := run(t, s.dir, "doctor", "-config", s.write(t))
			if code != 1 || !strings.Contains(out, c.line) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, c.line, out)
			}
			if strings.Count(out, "FAIL") != 1 {
				t.Errorf("one broken part, but:\n%s", out)
			}
		})
	}
}

// /readyz follows the SOCKS upstream of the running gateway.
func TestReadyzFollowsSOCKSUpstream(t *testing.T) {
	s := newDoctorSetup(t)
	socks := testenv.Microsocks(t, "127.0.0.2")
	s.socks = socks.Addr
	admin := testenv.Loopback(t)
	path := s.write(t)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), `listen = ""`, fmt.Sprintf("listen = %q", admin), 1)), 0o600)
	startGateway(t, s.dir, s.listen, admin)
	ready := func() (int, string) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := ready(); code != 200 || !strings.Contains(body, `"socks_upstream":{"ok":true}`) || !strings.Contains(body, `"ratelimit_store":{"ok":true}`) {
		t.Fatalf("ready: %d %s", code, body)
	}
	socks.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := ready()
		if code == 503 && strings.Contains(body, `"socks_upstream":{"ok":false`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SOCKS down, readyz: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

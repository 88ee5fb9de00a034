package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fedigate/fedigate/internal/testenv"
)

// The whole chain in the real binary: the backend sees the client as the
// edge decided it, a rate limit answers 429 before the backend, the sign-up
// gate refuses a sign-up without a pass, and /metrics and /readyz follow.
func TestEndToEndThroughBinary(t *testing.T) {
	dir := t.TempDir()
	rec, backend := startBackend(t, "web")
	addr, adminAddr := testenv.Loopback(t), testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, adminAddr, backend, `
[[ratelimit.rule]]
name = "api-sign-up"
limit = 2
`))
	startGateway(t, dir, addr, adminAddr)
	c := clientTo(addr)
	req, _ := http.NewRequest("GET", "https://social.test/api/v1/instance?x=1", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("CF-Connecting-IP", "6.6.6.6")
	req.Header.Set("Client-IP", "6.6.6.6")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("proxied: %d %v", resp.StatusCode, resp.Header)
	}
	seen := rec.requests()
	last := seen[len(seen)-1]
	// The peer is 127.0.0.1, a trusted proxy: so CF-Connecting-IP is believed.
	// (The untrusted case is covered in package proxy.)
	if last.Host != "social.test" || last.URL.RequestURI() != "/api/v1/instance?x=1" || last.Header.Get("X-Forwarded-Proto") != "https" ||
		last.Header.Get("X-Forwarded-For") != "6.6.6.6" || last.Header.Get("X-Real-IP") != "6.6.6.6" || last.Header.Get("Client-IP") != "" {
		t.Errorf("backend saw Host %q URI %q headers %v", last.Host, last.URL.RequestURI(), last.Header)
	}

	// The sign-up gate: no pass, no sign-up; the API policy is "challenge".
	post := func(path string) *http.Response {
		req, _ := http.NewRequest("POST", "https://social.test"+path, strings.NewReader("username=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	before := len(rec.requests())
	if r := post("/auth"); r.StatusCode != 403 {
		t.Errorf("sign-up without pass: %d", r.StatusCode)
	}
	codes := []int{post("/api/v1/accounts").StatusCode, post("/api/v1/accounts").StatusCode, post("/api/v1/accounts").StatusCode}
	if codes[0] != 403 || codes[1] != 403 || codes[2] != 429 {
		t.Errorf("API sign-up: %v, want 403 403 429 (gate, gate, then the limit of 2)", codes)
	}
	if len(rec.requests()) != before {
		t.Error("a refused sign-up reached the backend")
	}

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`fedigate_requests_total{code="200",route="web"} 1`,
		`fedigate_ratelimit_decisions_total{outcome="limited",rule="api-sign-up"} 1`,
		`fedigate_signup_events_total{event="refused"`,
		`fedigate_requests_total{code="429",route="ratelimit"} 1`,
		`fedigate_requests_total{code="403",route="signupgate"} 3`,
		`fedigate_certificate_expiry_timestamp_seconds{name="social.test"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if n := strings.Count(metrics, `fedigate_ratelimit_decisions_total{outcome="limited"`); n != 1 {
		t.Errorf("%d rules counted as limiting, want 1 (the one that refused)", n)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"backend_web":{"ok":true}`) {
		t.Errorf("readyz: %d %s", code, body)
	}
}

// Captcha verification is fedigate's own outbound call: it leaves through
// the egress's SOCKS upstream, never directly.
func TestCaptchaVerificationLeavesThroughEgress(t *testing.T) {
	s := newDoctorSetup(t)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	var peer atomic.Value
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		peer.Store(host)
		io.WriteString(w, `{"success":true}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	path := s.write(t)
	b, _ := os.ReadFile(path)
	text := strings.Replace(string(b), fmt.Sprintf("allow = [%q]", s.probe), fmt.Sprintf("allow = [%q]", ln.Addr().String()), 1) +
		fmt.Sprintf("[signup]\ngate = \"turnstile\"\nsite_key = \"site\"\nsecret = \"sekrit\"\nverify_url = \"http://%s/siteverify\"\n", ln.Addr())
	os.WriteFile(path, []byte(text), 0o600)
	g := startGateway(t, s.dir, s.listen)
	req, _ := http.NewRequest("POST", "https://social.test/.fedigate/verify", strings.NewReader("cf-turnstile-response=tok&return=%2Fauth%2Fsign_up"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c := clientTo(s.listen)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("verify: %d\n%s", resp.StatusCode, g.Logs())
	}
	if p, _ := peer.Load().(string); p != "127.0.0.2" {
		t.Fatalf("siteverify was reached from %q, want the SOCKS server's 127.0.0.2", p)
	}
	if strings.Contains(g.Logs(), "sekrit") {
		t.Error("the captcha secret reached the log")
	}
}

package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fedigate/fedigate/internal/testenv"
)

// TestFederationThroughBinary: in the real binary the federation guard
// runs on inbox POSTs with the client the edge decided (the limit counts
// per CF-Connecting-IP from the trusted tunnel), refuses a suspended
// domain, drops a spam Create, passes the rest, reports in /metrics, and
// takes a changed blocklist on SIGHUP.
func TestFederationThroughBinary(t *testing.T) {
	dir := t.TempDir()
	rec, backend := startBackend(t, "web")
	addr, adminAddr := testenv.Loopback(t), testenv.Loopback(t)
	blocks := filepath.Join(dir, "blocks.csv")
	if err := os.WriteFile(blocks, []byte("#domain,#severity\nsuspended.example,suspend\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, baseConfig(dir, addr, adminAddr, backend, `
[federation]
blocklist = "`+blocks+`"
limit = 2
[[federation.filter]]
name = "discord-invites"
match = ["discord.gg/"]
action = "drop"
`))
	g := startGateway(t, dir, addr, adminAddr)
	c := clientTo(addr)
	deliver := func(domain, client, content string) int {
		body := `{"type":"Create","object":{"type":"Note","content":"` + content + `"}}`
		req, _ := http.NewRequest("POST", "https://social.test/users/alice/inbox", strings.NewReader(body))
		req.Header.Set("Signature", `keyId="https://`+domain+`/users/a#main-key",algorithm="rsa-sha256",headers="(request-target) host date",signature="eA=="`)
		req.Header.Set("CF-Connecting-IP", client)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := deliver("suspended.example", "192.0.2.1", "hi"); s != http.StatusForbidden {
		t.Errorf("suspended domain: %d, want 403", s)
	}
	if s := deliver("spam.example", "192.0.2.1", "join discord.gg/x"); s != http.StatusAccepted {
		t.Errorf("spam: %d, want 202", s)
	}
	if s := deliver("spam.example", "192.0.2.1", "hi"); s != http.StatusOK {
		t.Errorf("second delivery of spam.example: %d, want the backend's 200", s)
	}
	if s := deliver("spam.example", "192.0.2.1", "hi"); s != http.StatusTooManyRequests {
		t.Errorf("third delivery of spam.example from one client: %d, want 429", s)
	}
	if s := deliver("spam.example", "192.0.2.2", "hi"); s != http.StatusOK {
		t.Errorf("from another client: %d, want the backend's 200", s)
	}
	for _, r := range rec.requests() {
		if strings.Contains(r.URL.Path, "inbox") && r.Header.Get("X-Real-IP") == "" {
			t.Errorf("a delivery reached the backend without the edge's headers: %v", r.Header)
		}
	}
	if n := len(rec.requests()); n != 2 {
		t.Errorf("backend saw %d deliveries, want 2", n)
	}
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := readAll(t, resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`fedigate_federation_deliveries_total{verdict="denied"} 1`,
		`fedigate_federation_deliveries_total{verdict="dropped"} 1`,
		`fedigate_federation_deliveries_total{verdict="limited"} 1`,
		`fedigate_federation_deliveries_total{verdict="passed"} 2`,
		`fedigate_federation_refused_top{domain="spam.example"} 2`,
		`fedigate_requests_total{code="403",route="federation"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := os.WriteFile(blocks, []byte("#domain,#severity\nother.example,suspend\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.signal(t, syscall.SIGHUP)
	g.waitLog(t, "config reloaded")
	if s := deliver("other.example", "192.0.2.3", "hi"); s != http.StatusForbidden {
		t.Errorf("after SIGHUP, the new suspended domain: %d, want 403", s)
	}
	if s := deliver("spam.example", "192.0.2.1", "hi"); s != http.StatusTooManyRequests {
		t.Errorf("after SIGHUP the limit's count was lost: %d, want 429", s)
	}
}

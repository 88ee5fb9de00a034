package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

func namedBackend(t *testing.T, name string, delay time.Duration, started chan<- struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if started != nil && r.URL.Path == "/slow" {
			started <- struct{}{}
			time.Sleep(delay)
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestReloadSwapsRoutesWhileSlowRequestCompletes(t *testing.T) {
	started := make(chan struct{}, 1)
	a := namedBackend(t, "A", 400*time.Millisecond, started)
	b := namedBackend(t, "B", 0, nil)
	cfg := testConfig(t, a.URL, "")
	te := startEdge(t, cfg, Options{})
	c := te.client(false)
	slow := make(chan string, 1)
	go func() {
		resp, err := c.Get(te.base + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(body)
	}()
	<-started
	cfg2 := testConfig(t, b.URL, "")
	cfg2.Server.Listen = cfg.Server.Listen
	if err := te.Reload(cfg2, Options{TLSConfig: te.tlsCfg, Logger: te.logger()}); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, c, te.base+"/", nil); body != "B" {
		t.Fatalf("after reload: %q", body)
	}
	if got := <-slow; got != "A" {
		t.Fatalf("in-flight request: %q", got)
	}
}

func TestReloadBadConfigKeepsOldServing(t *testing.T) {
	a := namedBackend(t, "A", 0, nil)
	te := startEdge(t, testConfig(t, a.URL, ""), Options{})
	bad := testConfig(t, a.URL, "")
	bad.Backend.StaticRoot = "/nonexistent/fedigate/public"
	if err := te.Reload(bad, Options{TLSConfig: te.tlsCfg}); err == nil || !strings.Contains(err.Error(), "static_root") {
		t.Fatalf("bad static root: %v", err)
	}
	if err := te.Reload(testConfig(t, a.URL, ""), Options{}); err == nil {
		t.Fatal("reload without TLS config accepted")
	}
	busy := testConfig(t, a.URL, "")
	busy.Server.Listen = te.Edge.Addr().String() // taken by ourselves: the new bind fails
	busy.Backend.Web = "http://127.0.0.1:1"
	if err := te.Reload(busy, Options{TLSConfig: te.tlsCfg}); err == nil {
		t.Fatal("reload onto a taken port accepted")
	}
	if _, body := get(t, te.client(false), te.base+"/", nil); body != "A" {
		t.Fatalf("old edge no longer serving: %q", body)
	}
}

func TestReloadRebindsChangedListen(t *testing.T) {
	a := namedBackend(t, "A", 0, nil)
	te := startEdge(t, testConfig(t, a.URL, ""), Options{})
	oldBase := te.base
	cfg2 := testConfig(t, a.URL, "")
	cfg2.Server.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg2.Server.HSTS = ""
	if err := te.Reload(cfg2, Options{TLSConfig: te.tlsCfg}); err != nil {
		t.Fatal(err)
	}
	newBase := "https://" + te.Edge.Addr().String()
	if newBase == oldBase {
		t.Fatal("address did not change")
	}
	resp, body := get(t, te.client(false), newBase+"/", nil)
	if body != "A" || resp.Header.Get("Strict-Transport-Security") != "" {
		t.Fatalf("new listener: %q hsts %q", body, resp.Header.Get("Strict-Transport-Security"))
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := te.client(false).Get(oldBase + "/")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("old listener still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

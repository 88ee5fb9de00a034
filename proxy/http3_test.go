package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
	"github.com/quic-go/quic-go/http3"
)

func (te *testEdge) h3Client(t testing.TB) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: te.pool, ServerName: "localhost"}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestHTTP3ServesTheSameChain(t *testing.T) {
	be, seenc := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.HTTP3 = true
	te := startEdge(t, cfg, Options{})
	port := te.Edge.Addr().(*net.TCPAddr).Port
	resp, _ := get(t, te.client(true), te.base+"/", nil)
	if want := fmt.Sprintf(`h3=":%d"; ma=86400`, port); resp.Header.Get("Alt-Svc") != want {
		t.Fatalf("HTTP/2 Alt-Svc %q, want %q", resp.Header.Get("Alt-Svc"), want)
	}
	<-seenc
	resp, body := get(t, te.h3Client(t), te.base+"/users/a/inbox?q=1", map[string]string{"X-Forwarded-For": "6.6.6.6"})
	if resp.ProtoMajor != 3 || body != `{"ok":true}` || resp.Header.Get("Alt-Svc") != "" {
		t.Fatalf("proto %s body %q alt-svc %q", resp.Proto, body, resp.Header.Get("Alt-Svc"))
	}
	s := <-seenc
	if s.Header.Get("X-Forwarded-For") != "127.0.0.1" || s.Path != "/users/a/inbox" || s.RawQuery != "q=1" {
		t.Fatalf("backend saw XFF %q path %q query %q", s.Header.Get("X-Forwarded-For"), s.Path, s.RawQuery)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS over HTTP/3")
	}
}

func TestHTTP3StreamingAndLargeBodies(t *testing.T) {
	next := make(chan struct{})
	st := streamingBackend(t, next)
	big := bytes.Repeat([]byte("fedigate"), 1<<19) // 4 MiB
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x %v", n, h.Sum(nil), err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(big)
	}))
	t.Cleanup(web.Close)
	cfg := testConfig(t, web.URL, st.URL)
	cfg.Server.HTTP3 = true
	te := startEdge(t, cfg, Options{})
	c := te.h3Client(t)

	resp, err := c.Get(te.base + "/api/v1/streaming/sse")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() {
		var sb strings.Builder
		for range 3 {
			l, _ := br.ReadString('\n')
			sb.WriteString(l)
		}
		first <- sb.String()
	}()
	select {
	case got := <-first:
		if got != "event: update\ndata: one\n\n" {
			t.Fatalf("first event %q", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("HTTP/3 SSE event was buffered")
	}
	next <- struct{}{}
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if string(rest) != "event: update\ndata: two\n\n" {
		t.Fatalf("second event %q", rest)
	}

	resp, err = c.Post(te.base+"/api/v2/media", "application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x <nil>", len(big), sha256.Sum256(big)); string(got) != want {
		t.Fatalf("upload: %q, want %q", got, want)
	}
	resp, err = c.Get(te.base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	down, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(down, big) {
		t.Fatalf("download: %d bytes", len(down))
	}
}

func TestAttackHTTP3EarlyDataUnsafeMethodRefused(t *testing.T) {
	be, seenc := recordingBackend(t)
	tc, _ := testTLS(t)
	e, err := New(testConfig(t, be.URL, ""), Options{TLSConfig: tc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodGet} {
		r := httptest.NewRequest(m, "https://localhost/api/v1/statuses", strings.NewReader("x"))
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/3.0", 3, 0
		r.TLS = &tls.ConnectionState{HandshakeComplete: false} // as in 0-RTT
		w := httptest.NewRecorder()
		e.Handler().ServeHTTP(w, r)
		want := http.StatusTooEarly
		if m == http.MethodGet {
			want = http.StatusOK
			<-seenc
		}
		if w.Code != want {
			t.Fatalf("%s in early data: %d, want %d", m, w.Code, want)
		}
	}
	if len(seenc) != 0 {
		t.Fatal("an unsafe early request reached the backend")
	}
}

func TestHTTP3UDPPortTakenKeepsTCP(t *testing.T) {
	be, _ := recordingBackend(t)
	port := testenv.FreePort(t)
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := testConfig(t, be.URL, "")
	cfg.Server.HTTP3 = true
	cfg.Server.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	te := startEdge(t, cfg, Options{})
	resp, body := get(t, te.client(true), te.base+"/", nil)
	if body != `{"ok":true}` || resp.Header.Get("Alt-Svc") != "" {
		t.Fatalf("body %q alt-svc %q", body, resp.Header.Get("Alt-Svc"))
	}
	if n := strings.Count(te.logs.String(), "HTTP/3 off"); n != 1 {
		t.Fatalf("%d warnings:\n%s", n, te.logs.String())
	}
}

func TestHTTP3ReloadOffAndShutdownDrains(t *testing.T) {
	started := make(chan struct{}, 1)
	a := namedBackend(t, "A", 300*time.Millisecond, started)
	cfg := testConfig(t, a.URL, "")
	cfg.Server.HTTP3 = true
	te := startEdge(t, cfg, Options{})
	c := te.h3Client(t)
	res := make(chan string, 1)
	go func() {
		resp, err := c.Get(te.base + "/slow")
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- string(b)
	}()
	<-started
	ctx, cancel := contextTimeout(5 * time.Second)
	defer cancel()
	if err := te.Shutdown(ctx); err != nil {
		t.Logf("shutdown: %v", err)
	}
	if got := <-res; got != "A" {
		t.Fatalf("in-flight HTTP/3 request: %q", got)
	}
	closed := te.h3Client(t)
	closed.Timeout = 500 * time.Millisecond
	if _, err := closed.Get(te.base + "/"); err == nil {
		t.Fatal("HTTP/3 still served after Shutdown")
	}

	te2 := startEdge(t, cfg2(t, a.URL), Options{})
	off := cfg2(t, a.URL)
	off.Server.Listen = te2.cfgListen()
	off.Server.HTTP3 = false
	if err := te2.Reload(off, Options{TLSConfig: te2.tlsCfg}); err != nil {
		t.Fatal(err)
	}
	resp, _ := get(t, te2.client(true), te2.base+"/", nil)
	if resp.Header.Get("Alt-Svc") != "" {
		t.Fatalf("Alt-Svc after HTTP/3 reloaded off: %q", resp.Header.Get("Alt-Svc"))
	}
}

func cfg2(t *testing.T, web string) *configs.Config {
	c := testConfig(t, web, "")
	c.Server.HTTP3 = true
	return c
}

func (te *testEdge) cfgListen() string { return te.Edge.cur.Load().cfg.Server.Listen }

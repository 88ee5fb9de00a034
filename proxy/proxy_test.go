package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProxyForwardsHostPathQueryAndHeaders(t *testing.T) {
	be, seenc := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	resp, body := get(t, te.client(false), te.base+"/users/a/inbox?x=%2F1&y=a+b", map[string]string{
		"Host": "example.test", "Proxy": "http://evil", "Connection": "X-Secret", "X-Secret": "1", "Keep-Alive": "timeout=5",
	})
	if resp.StatusCode != 200 || body != `{"ok":true}` {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	s := <-seenc
	if s.Host != "example.test" || s.Path != "/users/a/inbox" || s.RawQuery != "x=%2F1&y=a+b" {
		t.Fatalf("backend saw host %q path %q query %q", s.Host, s.Path, s.RawQuery)
	}
	want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "https"}
	for k, v := range want {
		if got := s.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Proxy", "Client-Ip", "X-Secret", "Keep-Alive", "Forwarded"} {
		if v := s.Header.Get(k); v != "" {
			t.Errorf("backend saw %s: %q", k, v)
		}
	}
	if resp.Header.Get("Strict-Transport-Security") != "max-age=63072000; includeSubDomains" {
		t.Errorf("HSTS = %q", resp.Header.Get("Strict-Transport-Security"))
	}
	logs := te.logs.String()
	for _, f := range []string{"client=127.0.0.1", "method=GET", "path=/users/a/inbox", "status=200", "bytes=11", "route=web", "duration="} {
		if !strings.Contains(logs, f) {
			t.Errorf("access log lacks %q:\n%s", f, logs)
		}
	}
	if strings.Contains(logs, "x=%2F1") {
		t.Errorf("access log has the query:\n%s", logs)
	}
}

func TestAttackSpoofedForwardingHeadersFromUntrustedPeerDropped(t *testing.T) {
	be, seenc := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	_, _ = get(t, te.client(false), te.base+"/", map[string]string{
		"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6", "CF-Connecting-IP": "6.6.6.6", "Client-IP": "6.6.6.6",
		"Forwarded": "for=6.6.6.6", "X-Forwarded-Host": "evil.test", "CF-Ray": "x", "X-Forwarded-Proto": "http",
	})
	s := <-seenc
	if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Fatalf("X-Forwarded-For = %q", got)
	}
	for k, v := range s.Header {
		if strings.Contains(strings.Join(v, ","), "6.6.6.6") || strings.HasPrefix(k, "Cf-") || k == "X-Forwarded-Host" || k == "Forwarded" || k == "Client-Ip" {
			t.Errorf("backend saw spoofed %s: %q", k, v)
		}
	}
	if s.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto = %q", s.Header.Get("X-Forwarded-Proto"))
	}
}

func TestTrustedPeerNamesTheClient(t *testing.T) {
	be, seenc := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	var guardSaw netip.Addr
	guard := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { guardSaw = ClientAddr(r); next.ServeHTTP(w, r) })
	}
	te := startEdge(t, cfg, Options{Guards: []func(http.Handler) http.Handler{guard}})
	rows := []struct {
		name string
		hdr  map[string]string
		want string
	}{
		{"cf-connecting-ip", map[string]string{"CF-Connecting-IP": "203.0.113.7", "X-Forwarded-For": "198.51.100.1"}, "203.0.113.7"},
		{"cf ipv6 mapped", map[string]string{"CF-Connecting-IP": "::ffff:203.0.113.8"}, "203.0.113.8"},
		{"xff right-most untrusted", map[string]string{"X-Forwarded-For": "6.6.6.6, 198.51.100.2, 10.1.2.3"}, "198.51.100.2"},
		{"xff ipv6 zone", map[string]string{"X-Forwarded-For": "fe80::1%eth0"}, "fe80::1"},
		{"attack garbage cf falls back to peer", map[string]string{"CF-Connecting-IP": "not-an-ip", "X-Forwarded-For": "198.51.100.3"}, "127.0.0.1"},
		{"attack garbage xff falls back to peer", map[string]string{"X-Forwarded-For": "198.51.100.4, bogus"}, "127.0.0.1"},
		{"no header", nil, "127.0.0.1"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			_, _ = get(t, te.client(false), te.base+"/", row.hdr)
			s := <-seenc
			if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != row.want {
				t.Fatalf("X-Forwarded-For = %q, want %q", got, row.want)
			}
			if s.Header.Get("X-Real-Ip") != row.want || guardSaw.String() != row.want {
				t.Fatalf("X-Real-IP %q, guard saw %v, want %s", s.Header.Get("X-Real-Ip"), guardSaw, row.want)
			}
		})
	}
}

func TestHTTP2Negotiated(t *testing.T) {
	be, _ := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	resp, body := get(t, te.client(true), te.base+"/api/v1/instance", nil)
	if resp.ProtoMajor != 2 || body != `{"ok":true}` {
		t.Fatalf("proto %s body %q", resp.Proto, body)
	}
}

func TestTLS11Refused(t *testing.T) {
	be, _ := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	c := te.client(false)
	c.Transport.(*http.Transport).TLSClientConfig.MaxVersion = 0x0302
	if _, err := c.Get(te.base + "/"); err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestAttackUnknownHostMisdirected(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.Hosts = []string{"Example.Test"}
	te := startEdge(t, cfg, Options{})
	if resp, _ := get(t, te.client(false), te.base+"/", map[string]string{"Host": "evil.test"}); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("evil host: %d", resp.StatusCode)
	}
	if resp, _ := get(t, te.client(false), te.base+"/", map[string]string{"Host": "example.test:443"}); resp.StatusCode != 200 {
		t.Fatalf("good host: %d", resp.StatusCode)
	}
}

func TestAttackOversizedBody413(t *testing.T) {
	be, seenc := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.MaxRequestBody = 1000
	te := startEdge(t, cfg, Options{})
	c := te.client(false)
	resp, err := c.Post(te.base+"/api/v1/media", "application/octet-stream", strings.NewReader(strings.Repeat("a", 1001)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("known length: %d", resp.StatusCode)
	}
	// chunked: no Content-Length, the limit is crossed while streaming.
	resp, err = c.Post(te.base+"/api/v1/media", "application/octet-stream", io.MultiReader(strings.NewReader(strings.Repeat("b", 600)), strings.NewReader(strings.Repeat("b", 600))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: %d", resp.StatusCode)
	}
	select {
	case s := <-seenc:
		if len(s.Body) > 1000 {
			t.Fatalf("backend got %d bytes", len(s.Body))
		}
	case <-time.After(100 * time.Millisecond):
	}
	resp, err = c.Post(te.base+"/ok", "text/plain", strings.NewReader(strings.Repeat("c", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("at the limit: %d", resp.StatusCode)
	}
}

func TestAttackOversizedHeaders431(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.MaxHeaderBytes = 4 << 10
	te := startEdge(t, cfg, Options{})
	big := map[string]string{"X-Big": strings.Repeat("x", 16<<10)}
	if resp, _ := get(t, te.client(false), te.base+"/", big); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("HTTP/1.1: %d", resp.StatusCode)
	}
	// Go's HTTP/2 client refuses to send past the advertised limit, so
	// the attack is written frame by frame.
	if status := rawH2Status(t, te, strings.Repeat("x", 100)); status != "200" {
		t.Fatalf("HTTP/2 small: %s", status)
	}
	if status := rawH2Status(t, te, strings.Repeat("x", 6000)); status != "431" {
		t.Fatalf("HTTP/2 over the limit: %s", status)
	}
	// Far over the limit the server drops the connection (GOAWAY) unread.
	if status := rawH2Status(t, te, strings.Repeat("x", 64<<10)); status != "" {
		t.Fatalf("HTTP/2 far over the limit: %s", status)
	}
}

func TestBackendDown502And504With500Page(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "500.html"), []byte("<h1>we are down</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(func() { close(release); slow.Close() })

	cfg := testConfig(t, deadURL, slow.URL)
	cfg.Backend.StaticRoot = root
	cfg.Backend.ResponseTimeout = 300 * time.Millisecond
	te := startEdge(t, cfg, Options{})
	resp, body := get(t, te.client(false), te.base+"/home", nil)
	if resp.StatusCode != http.StatusBadGateway || body != "<h1>we are down</h1>" {
		t.Fatalf("down: %d %q", resp.StatusCode, body)
	}
	// an API path is answered in JSON, as Mastodon's own errors are
	resp, body = get(t, te.client(false), te.base+"/api/v1/streaming/health", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || body != `{"error":"gateway timeout: the backend did not answer in time"}`+"\n" ||
		resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("slow: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(te.logs.String(), "backend error") {
		t.Fatalf("no backend error logged:\n%s", te.logs.String())
	}
}

func TestBackendDownShortTextWithoutPage(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	te := startEdge(t, testConfig(t, deadURL, ""), Options{})
	resp, body := get(t, te.client(false), te.base+"/", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "bad gateway") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestObserveCalledOncePerRequest(t *testing.T) {
	be, _ := recordingBackend(t)
	got := make(chan string, 4)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{Observe: func(route string, status int, d time.Duration) {
		got <- fmt.Sprintf("%s %d", route, status)
	}})
	_, _ = get(t, te.client(false), te.base+"/x", nil)
	if g := <-got; g != "web 200" {
		t.Fatalf("observe %q", g)
	}
	select {
	case g := <-got:
		t.Fatalf("second observe %q", g)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestGzipOfBackendJSON(t *testing.T) {
	body := `{"data":"` + strings.Repeat("mastodon ", 100) + `"}`
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Strict-Transport-Security", "max-age=1")
		if r.URL.Path == "/tiny" {
			_, _ = io.WriteString(w, `{}`)
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(be.Close)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	resp, raw := get(t, te.client(false), te.base+"/api/v1/timelines/public", map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" || len(raw) >= len(body) {
		t.Fatalf("encoding %q vary %q len %d", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"), len(raw))
	}
	if hsts := resp.Header.Values("Strict-Transport-Security"); len(hsts) != 1 || hsts[0] != "max-age=63072000; includeSubDomains" {
		t.Fatalf("HSTS %q", hsts)
	}
	resp, raw = get(t, te.client(false), te.base+"/api/v1/timelines/public", nil)
	if resp.Header.Get("Content-Encoding") != "" || raw != body {
		t.Fatalf("plain: encoding %q", resp.Header.Get("Content-Encoding"))
	}
	resp, raw = get(t, te.client(false), te.base+"/tiny", map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "" || raw != `{}` {
		t.Fatalf("tiny body compressed: %q", resp.Header.Get("Content-Encoding"))
	}
}

func TestRedirect308(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.RedirectListen = "127.0.0.1:0"
	cfg.Server.Hosts = []string{"example.test"}
	te := startEdge(t, cfg, Options{})
	conn := dialPlain(t, te.RedirectAddr().String())
	fmt.Fprintf(conn, "GET /@alice?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	port := te.Addr().String()[strings.LastIndexByte(te.Addr().String(), ':'):]
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://example.test"+port+"/@alice?x=1" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("evil host on redirect: %d", resp.StatusCode)
	}
}

// A request a guard answers itself is logged and observed under the
// guard's name; one it passes on, under the route that served it.
func TestGuardAnswersCarryGuardName(t *testing.T) {
	be, _ := recordingBackend(t)
	got := make(chan string, 4)
	refuse := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/limited" {
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	pass := func(next http.Handler) http.Handler { return next }
	te := startEdge(t, testConfig(t, be.URL, ""), Options{
		Guards: []func(http.Handler) http.Handler{refuse, pass}, GuardNames: []string{"ratelimit"},
		Observe: func(route string, status int, d time.Duration) { got <- fmt.Sprintf("%s %d", route, status) },
	})
	_, _ = get(t, te.client(false), te.base+"/limited", nil)
	_, _ = get(t, te.client(false), te.base+"/fine", nil)
	if a, b := <-got, <-got; a != "ratelimit 429" || b != "web 200" {
		t.Fatalf("observed %q, %q", a, b)
	}
	if !strings.Contains(te.logs.String(), "status=429") || !strings.Contains(te.logs.String(), "route=ratelimit") {
		t.Errorf("access log:\n%s", te.logs.String())
	}
}

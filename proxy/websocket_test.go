package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fedigate/fedigate/internal/wsload"
)

// wsBackend is a real streaming backend (echo) on loopback.
func wsBackend(t *testing.T) (*wsload.Backend, *httptest.Server) {
	t.Helper()
	b := wsload.NewBackend()
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv
}

func (te *testEdge) wsClient() *wsload.Client {
	return &wsload.Client{Addr: te.Edge.Addr().String(), TLS: &tls.Config{RootCAs: te.pool, ServerName: "localhost"}}
}

const wsURL = "wss://localhost/api/v1/streaming?stream=user"

func dialWS(t *testing.T, te *testEdge, hdr http.Header, protos ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := te.wsClient().Dial(ctx, wsURL, hdr, protos...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	ws.SetReadLimit(1 << 20)
	return ws
}

// readClose waits for the websocket to end and returns its close code
// (-1: it ended without a close frame).
func readClose(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the websocket stayed open")
			}
			return websocket.CloseStatus(err)
		}
	}
}

func TestWebsocketOwnProxyKeepsHeaderPolicyAndRelaysBothWays(t *testing.T) {
	web, _ := recordingBackend(t)
	b, st := wsBackend(t)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
	hdr := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Proxy": {"http://evil.test"}, "X-Custom": {"kept"}}
	ws := dialWS(t, te, hdr, "token-in-protocol")
	if ws.Subprotocol() != "token-in-protocol" {
		t.Fatalf("subprotocol %q", ws.Subprotocol())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// small messages, and ones spanning many TLS records and reads
	for _, size := range []int{1, 125, 126, 65535, 65536, 300_000} {
		if err := wsload.Echo(ctx, ws, strings.Repeat("x", size)); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
	}
	seen := b.Seen()
	if len(seen) != 1 {
		t.Fatalf("%d upgrades", len(seen))
	}
	r := seen[0]
	checks := map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "https",
		"Proxy": "", "X-Custom": "kept", "Sec-Websocket-Protocol": "token-in-protocol", "Upgrade": "websocket",
	}
	for k, want := range checks {
		if got := strings.Join(r.Header[k], ","); got != want {
			t.Errorf("backend saw %s = %q, want %q", k, got, want)
		}
	}
	if r.Host != "localhost" || r.URL.RawQuery != "stream=user" {
		t.Errorf("backend saw host %q query %q", r.Host, r.URL.RawQuery)
	}
	if !strings.Contains(te.logs.String(), "status=101") {
		t.Errorf("access log lacks the 101:\n%s", te.logs.String())
	}
}

func TestWebsocketShutdownSendsGoingAwayAndClosesBackend(t *testing.T) {
	web, _ := recordingBackend(t)
	b, st := wsBackend(t)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
	var wss []*websocket.Conn
	for range 5 {
		ws := dialWS(t, te, nil)
		if err := wsload.Echo(context.Background(), ws, "ping"); err != nil {
			t.Fatal(err)
		}
		wss = append(wss, ws)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := te.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	for i, ws := range wss {
		if code := readClose(t, ws); code != websocket.StatusGoingAway {
			t.Errorf("websocket %d: close code %d, want 1001", i, code)
		}
	}
	for i := range wss {
		select {
		case <-b.Closed():
		case <-time.After(3 * time.Second):
			t.Fatalf("the backend side of websocket %d stayed open", i)
		}
	}
	if n := te.state.streams.count(); n != 0 {
		t.Fatalf("%d streams still counted", n)
	}
}

func TestWebsocketBackendDyingGivesClient1011(t *testing.T) {
	web, _ := recordingBackend(t)
	_, st := wsBackend(t)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
	ws := dialWS(t, te, nil)
	if err := ws.Write(context.Background(), websocket.MessageText, []byte("die")); err != nil {
		t.Fatal(err)
	}
	if code := readClose(t, ws); code != websocket.StatusInternalError {
		t.Fatalf("close code %d, want 1011", code)
	}
	waitFor(t, func() bool { return strings.Contains(te.logs.String(), "websocket backend gone") }, "the warning")
	if n := te.state.streams.count(); n != 0 {
		t.Fatalf("%d streams still counted", n)
	}
}

func TestWebsocketBackendDownIs502AtOnce(t *testing.T) {
	web, _ := recordingBackend(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	te := startEdge(t, testConfig(t, web.URL, down), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	_, resp, err := te.wsClient().Dial(ctx, wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("upgrade to a backend that is down: %v %v", resp, err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("the 502 took %v", d)
	}
}

func TestWebsocketSilentBackendIs504AtResponseTimeout(t *testing.T) {
	web, _ := recordingBackend(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accepts, reads, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = c.Read(make([]byte, 4096)); time.Sleep(10 * time.Second); c.Close() }()
		}
	}()
	cfg := testConfig(t, web.URL, "http://"+ln.Addr().String())
	cfg.Backend.ResponseTimeout = 400 * time.Millisecond
	te := startEdge(t, cfg, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	_, resp, err := te.wsClient().Dial(ctx, wsURL, nil)
	d := time.Since(t0)
	if err == nil || resp == nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("upgrade to a silent backend: %v %v", resp, err)
	}
	if d < 400*time.Millisecond || d > 2*time.Second {
		t.Fatalf("the 504 came after %v, want about 400ms", d)
	}
}

func TestWebsocketUpgradeToAnotherProtocolRefused(t *testing.T) {
	web, _ := recordingBackend(t)
	b, st := wsBackend(t)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
	for _, up := range []string{"h2c", "tls/1.0"} {
		req, _ := http.NewRequest(http.MethodGet, te.base+"/api/v1/streaming", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", up)
		resp, err := te.client(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Upgrade: %s: %d, want 400", up, resp.StatusCode)
		}
	}
	if len(b.Seen()) != 0 {
		t.Fatal("the backend saw a refused upgrade")
	}
}

// An attacker holding many streams from one address (or one IPv6 /64)
// is refused past server.max_streams_per_client; others are not.
func TestStreamsPerClientBoundHoldsAgainstOneHostHoardingStreams(t *testing.T) {
	web, _ := recordingBackend(t)
	_, st := wsBackend(t)
	cfg := testConfig(t, web.URL, st.URL)
	cfg.Server.MaxStreamsPerClient = 3
	cfg.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	te := startEdge(t, cfg, Options{})
	from := func(ip string) http.Header { return http.Header{"Cf-Connecting-Ip": {ip}} }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var open []*websocket.Conn
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"} { // one /64
		open = append(open, dialWS(t, te, from(ip)))
	}
	_, resp, err := te.wsClient().Dial(ctx, wsURL, from("2001:db8:1:2::99"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th stream of one /64: %v %v", resp, err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// server-sent events count too
	req, _ := http.NewRequest(http.MethodGet, te.base+"/api/v1/streaming/public", nil)
	req.Header = from("2001:db8:1:2::5")
	r2, err := te.client(true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("SSE over the bound: %d", r2.StatusCode)
	}
	other := dialWS(t, te, from("2001:db8:1:3::1")) // the next /64 is another client
	if err := wsload.Echo(ctx, other, "x"); err != nil {
		t.Fatal(err)
	}
	_ = open[0].Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool {
		ws, _, err := te.wsClient().Dial(ctx, wsURL, from("2001:db8:1:2::7"))
		if err == nil {
			_ = ws.CloseNow()
		}
		return err == nil
	}, "a freed slot")
	if !strings.Contains(te.logs.String(), "client=2001:db8:1:2::/64") {
		t.Errorf("refusal not logged per /64:\n%s", te.logs.String())
	}
}

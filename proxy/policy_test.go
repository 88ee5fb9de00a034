package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// policyBackend echoes the request header it got as JSON, after a 103,
// with hop-by-hop headers, its own HSTS and Alt-Svc and a header its
// Connection names: everything the policy must clean on the way back.
func policyBackend(t *testing.T) *httptest.Server {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Link", "</packs/app.js>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		got := r.Header.Clone()
		got.Set("Host", r.Host)
		got.Set("X-Target", r.URL.RequestURI())
		h.Set("Connection", "X-Internal")
		h.Set("X-Internal", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Strict-Transport-Security", "max-age=1")
		h.Set("Alt-Svc", `h3=":1"`)
		h.Set("Content-Type", "application/json")
		h.Set("X-Ratelimit-Limit", "300")
		_ = json.NewEncoder(w).Encode(got)
	}))
	t.Cleanup(be.Close)
	return be
}

// sentAndSeen is what the backend got and what the client got back.
type sentAndSeen struct {
	backend http.Header
	client  http.Header
	status  int
}

func policyExchange(t *testing.T, c *http.Client, method, url string, h2 bool) sentAndSeen {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("a=1")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if !h2 { // HTTP/2 has no Connection header at all
		req.Header.Set("Connection", "keep-alive, X-Secret")
		req.Header.Set("X-Secret", "from the client")
		req.Header.Set("Keep-Alive", "timeout=1")
	}
	req.Header.Set("Proxy", "http://evil.test")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Header.Set("X-Forwarded-Host", "evil.test")
	req.Header.Set("Forwarded", "for=10.0.0.1")
	req.Header.Set("Client-Ip", "10.0.0.1")
	req.Header.Set("Cf-Connecting-Ip", "10.0.0.1")
	req.Header.Set("Cookie", "_session=abc")
	req.Header.Set("Accept", "application/activity+json")
	req.Header.Set("Signature", `keyId="https://a.test/actor#main-key",signature="x"`)
	req.Header.Set("User-Agent", "policy-test")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got http.Header
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	// what differs by the request's own framing, not by the path taken
	for _, k := range []string{"Content-Length", "Content-Type", "Accept-Encoding"} {
		got.Del(k)
	}
	if h := got.Get("Host"); h != req.URL.Host {
		t.Errorf("%s %s: the backend got Host %q, want %q", method, url, h, req.URL.Host)
	}
	got.Del("Host") // the two edges' ports differ
	ch := resp.Header.Clone()
	for _, k := range []string{"Date", "Content-Length"} {
		ch.Del(k)
	}
	return sentAndSeen{backend: got, client: ch, status: resp.StatusCode}
}

// Both paths to the backend (the lean client and ReverseProxy) apply one
// policy: the same request headers reach the backend and the same answer
// headers reach the client, header by header, over HTTP/1.1 and HTTP/2,
// for GET (lean) and POST (ReverseProxy) alike.
func TestBothBackendPathsApplyOnePolicy(t *testing.T) {
	be := policyBackend(t)
	lean := startEdge(t, testConfig(t, be.URL, ""), Options{})
	general := startEdge(t, testConfig(t, be.URL, ""), Options{noLean: true})
	if lean.Edge.cur.Load().backends.h1 == nil || general.Edge.cur.Load().backends.h1 != nil {
		t.Fatal("the two edges do not take the two paths")
	}
	for _, h2 := range []bool{false, true} {
		want := policyExchange(t, general.client(h2), http.MethodGet, general.base+"/users/a?x=1;y=2", h2)
		for name, got := range map[string]sentAndSeen{
			"lean GET":         policyExchange(t, lean.client(h2), http.MethodGet, lean.base+"/users/a?x=1;y=2", h2),
			"ReverseProxy GET": want,
		} {
			comparePolicy(t, fmt.Sprintf("h2=%v %s", h2, name), got, want)
		}
		post := policyExchange(t, lean.client(h2), http.MethodPost, lean.base+"/users/a?x=1;y=2", h2)
		post.backend.Del("Content-Type")
		comparePolicy(t, fmt.Sprintf("h2=%v POST", h2), post, want)
	}
}

func comparePolicy(t *testing.T, name string, got, want sentAndSeen) {
	t.Helper()
	if got.status != http.StatusOK {
		t.Fatalf("%s: status %d", name, got.status)
	}
	if !reflect.DeepEqual(got.backend, want.backend) {
		t.Errorf("%s: the backend saw\n%s\nwant\n%s", name, dump(got.backend), dump(want.backend))
	}
	if !reflect.DeepEqual(got.client, want.client) {
		t.Errorf("%s: the client saw\n%s\nwant\n%s", name, dump(got.client), dump(want.client))
	}
	// and what the policy promises, whichever path
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy", "Proxy-Authorization", "X-Forwarded-Host", "Forwarded", "Client-Ip", "Cf-Connecting-Ip", "Connection"} {
		if v, ok := got.backend[k]; ok {
			t.Errorf("%s: the backend got %s: %q", name, k, v)
		}
	}
	if v := got.backend.Get("X-Forwarded-For"); v != "127.0.0.1" || got.backend.Get("X-Real-Ip") != "127.0.0.1" || got.backend.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("%s: forwarding headers %q", name, got.backend)
	}
	if got.backend.Get("X-Target") != "/users/a?x=1;y=2" {
		t.Errorf("%s: target %q", name, got.backend.Get("X-Target"))
	}
	for _, k := range []string{"X-Internal", "Keep-Alive", "Connection", "Alt-Svc"} {
		if v, ok := got.client[k]; ok {
			t.Errorf("%s: the client got %s: %q", name, k, v)
		}
	}
	if v := got.client.Values("Strict-Transport-Security"); len(v) != 1 || v[0] != "max-age=63072000; includeSubDomains" {
		t.Errorf("%s: after a 103 the client got HSTS %q, want the edge's alone", name, v)
	}
}

func dump(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, h[k])
	}
	return b.String()
}

// Attack: a backend writes a stray answer on a kept-alive connection some
// time after its real one (not in the same write). The next request on
// that connection must not take it for its own answer: the connection is
// closed when it is taken from the pool, as http.Transport refuses it.
func TestAttackStrayAnswerAfterDelayNotTakenByNextRequest(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
		}
	})
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	c := te.client(false)
	for i := 0; i < 3; i++ {
		if resp, body := get(t, c, te.base+"/users/a", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: status %d body %q: a stray answer was taken for the next request's", i, resp.StatusCode, body)
		}
		time.Sleep(500 * time.Millisecond) // the stray answer lands while the connection is idle
	}
	if n := rb.conns.Load(); n != 3 {
		t.Fatalf("backend saw %d connections, want 3 (a connection with a stray answer was reused)", n)
	}
}

// Attack: a backend answer with a 1 MB header block is not relayed: 502,
// on both paths (backend.max_response_header_bytes, 64 KB by default).
func TestAttackBackendHeaderBlock1MB502(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, ok := readHead(br)
		if !ok {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("b", 1000) + "\r\n"
		_, _ = io.WriteString(c, strings.Repeat(line, 1<<20/len(line)))
		_, _ = io.WriteString(c, "Content-Length: 2\r\n\r\nok")
	})
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	c := te.client(false)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, te.base+"/api/v1/statuses", strings.NewReader(""))
		if method == http.MethodPost {
			req.Body = io.NopCloser(strings.NewReader("x=1"))
			req.ContentLength = 3
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || len(resp.Header) > 10 || len(body) > 200 {
			t.Fatalf("%s: status %d, %d header fields, %d body bytes: want a short 502", method, resp.StatusCode, len(resp.Header), len(body))
		}
	}
}

// Attack: a header the client names in Connection ("Connection:
// keep-alive, X-Secret") is hop-by-hop and never reaches the backend, on
// GET (the lean path) and POST (ReverseProxy) alike.
func TestAttackConnectionNamedHeaderDroppedOnGetAndPost(t *testing.T) {
	be, seenCh := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	for _, h2 := range []bool{false} { // HTTP/2 and 3 have no Connection header
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, te.base+"/inbox", nil)
			if method == http.MethodPost {
				req.Body = io.NopCloser(strings.NewReader("{}"))
				req.ContentLength = 2
			}
			req.Header.Set("Connection", "keep-alive, X-Secret")
			req.Header.Set("X-Secret", "s")
			resp, err := te.client(h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s := <-seenCh
			if v, ok := s.Header["X-Secret"]; ok {
				t.Errorf("h2=%v %s: backend got X-Secret %q", h2, method, v)
			}
		}
	}
}

// The edge's HSTS survives a 103 Early Hints on both paths: the final
// answer carries it once, and the backend's own is dropped.
func TestHSTSKeptAfter103OnBothPaths(t *testing.T) {
	be := policyBackend(t)
	for _, noLean := range []bool{false, true} {
		te := startEdge(t, testConfig(t, be.URL, ""), Options{noLean: noLean})
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			got := policyExchange(t, te.client(false), method, te.base+"/", false)
			if v := got.client.Values("Strict-Transport-Security"); len(v) != 1 || v[0] != "max-age=63072000; includeSubDomains" {
				t.Errorf("noLean=%v %s: HSTS %q", noLean, method, v)
			}
		}
	}
}

// A request the edge refuses itself (421, 400, 413, 431) is logged with
// the client the tunnel named (CF-Connecting-IP), not the tunnel's
// loopback address.
func TestRefusalLoggedWithTunnelClient(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.Server.Hosts = []string{"127.0.0.1"}
	cfg.Server.MaxRequestBody = 10
	cfg.Server.MaxHeaderBytes = 4 << 10
	te := startEdge(t, cfg, Options{})
	cases := []struct {
		name   string
		status int
		prep   func(r *http.Request)
	}{
		{"unknown host", http.StatusMisdirectedRequest, func(r *http.Request) { r.Host = "evil.test" }},
		{"body too large", http.StatusRequestEntityTooLarge, func(r *http.Request) {
			r.Method = http.MethodPost
			r.Body = io.NopCloser(strings.NewReader(strings.Repeat("x", 100)))
			r.ContentLength = 100
		}},
		{"header too large", http.StatusRequestHeaderFieldsTooLarge, func(r *http.Request) { r.Header.Set("X-Big", strings.Repeat("x", 5000)) }},
	}
	for i, tc := range cases {
		client := fmt.Sprintf("203.0.113.%d", i+1)
		req, _ := http.NewRequest(http.MethodGet, te.base+"/about", nil)
		req.Header.Set("CF-Connecting-IP", client)
		tc.prep(req)
		resp, err := te.client(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
		waitFor(t, func() bool {
			return strings.Contains(te.logs.String(), fmt.Sprintf("client=%s method=", client))
		}, tc.name+": an access line with the tunnel's client")
	}
	// a path with a ".." segment, written raw (clients clean it)
	c := te.rawTLS(t)
	fmt.Fprintf(c, "GET /a/../b HTTP/1.1\r\nHost: 127.0.0.1\r\nCF-Connecting-IP: 203.0.113.9\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dot-dot path: %v %v", resp, err)
	}
	waitFor(t, func() bool { return strings.Contains(te.logs.String(), "client=203.0.113.9 method=") }, "the dot-dot refusal logged with the tunnel's client")
}

// The edge's own errors are JSON {"error": "..."} on /api/ and to a client
// that accepts JSON, as Mastodon's clients expect; short text elsewhere.
func TestEdgeErrorsJSONOnAPI(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.MaxRequestBody = 10
	cfg.Server.Hosts = []string{"127.0.0.1"}
	te := startEdge(t, cfg, Options{})
	for _, tc := range []struct {
		path, accept, host string
		status             int
		json               bool
	}{
		{"/api/v2/media", "", "", http.StatusRequestEntityTooLarge, true},
		{"//API/v2/media", "", "", http.StatusRequestEntityTooLarge, true},
		{"/about", "application/json", "", http.StatusRequestEntityTooLarge, true},
		{"/about", "text/html", "", http.StatusRequestEntityTooLarge, false},
		{"/users/a", "application/activity+json", "evil.test", http.StatusMisdirectedRequest, true},
		{"/users/a", "", "evil.test", http.StatusMisdirectedRequest, false},
	} {
		req, _ := http.NewRequest(http.MethodPost, te.base+tc.path, strings.NewReader(strings.Repeat("x", 100)))
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := te.client(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error string }
		isJSON := resp.Header.Get("Content-Type") == "application/json; charset=utf-8" && json.Unmarshal(body, &e) == nil && e.Error != ""
		if resp.StatusCode != tc.status || isJSON != tc.json {
			t.Errorf("%s (Accept %q): %d %q %q, want %d json=%v", tc.path, tc.accept, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.json)
		}
	}
}

// A client that leaves while the backend is still sending its header
// (slowly, after a first byte) is noticed: the backend connection is
// closed, not held to the response timeout.
func TestH1ClientGoneDuringSlowHeaderNoticed(t *testing.T) {
	closed := make(chan time.Time, 1)
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); !ok {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Slow: ")
		_, _ = br.ReadByte() // blocks until the edge closes the connection
		closed <- time.Now()
	})
	cfg := testConfig(t, rb.url(), "")
	cfg.Backend.ResponseTimeout = 8 * time.Second
	te := startEdge(t, cfg, Options{})
	c := te.client(false)
	c.Timeout = 300 * time.Millisecond
	left := time.Now()
	if _, err := c.Get(te.base + "/"); err == nil {
		t.Fatal("the slow header came through")
	}
	select {
	case at := <-closed:
		if d := at.Sub(left); d > 3*time.Second {
			t.Fatalf("backend connection closed %v after the client left", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the backend connection was held after the client left")
	}
}

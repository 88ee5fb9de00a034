package proxy

import (
	"github.com/fedigate/fedigate/configs"

	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawBackend is a TCP backend whose connections are served by handle, to
// play backends that misbehave in ways net/http would not.
type rawBackend struct {
	ln    net.Listener
	conns atomic.Int32 // connections accepted
	wg    sync.WaitGroup
}

func startRawBackend(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{ln: ln}
	rb.wg.Add(1)
	go func() {
		defer rb.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.conns.Add(1)
			rb.wg.Add(1)
			go func() {
				defer rb.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); rb.wg.Wait() })
	return rb
}

func (rb *rawBackend) url() string { return "http://" + rb.ln.Addr().String() }

// readHead reads one request head; false at the connection's end.
func readHead(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	return req, err == nil
}

// answerEach is a raw backend's handler that answers every request on a
// connection with answer, in one write, whatever it holds.
func answerEach(answer string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			_, _ = io.WriteString(c, answer)
		}
	}
}

// The fast path keeps one backend connection for a run of requests.
func TestH1PoolReusesBackendConnection(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	var conns atomic.Int32
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	c := te.client(false)
	for i := 0; i < 5; i++ {
		if resp, body := get(t, c, te.base+"/api/v1/instance", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		req, _ := http.NewRequest(http.MethodHead, te.base+"/api/v1/instance", nil)
		resp, err := c.Do(req)
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != 2 {
			t.Fatalf("HEAD: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("backend saw %d connections for 10 sequential requests, want 1", n)
	}
}

// A backend that closes keep-alive connections when idle (Puma after its
// persistent_timeout) costs the client nothing: the request is sent again
// on a new connection.
func TestH1RetriesOnConnectionClosedWhileIdle(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); !ok {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// keep-alive promised, then dropped before the next request
	})
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	c := te.client(false)
	for i := 0; i < 3; i++ {
		if resp, body := get(t, c, te.base+"/", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond) // the backend's close lands in the pool
	}
	if n := rb.conns.Load(); n != 3 {
		t.Fatalf("backend saw %d connections, want 3", n)
	}
}

// Attack: a backend (or whatever answers on its port) sends more than one
// response for one request. The extra bytes must never become the answer
// to somebody else's request: the connection is not reused.
func TestAttackH1ResponseDesyncNotReused(t *testing.T) {
	rb := startRawBackend(t, answerEach("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!"))
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	c := te.client(false)
	for i := 0; i < 3; i++ {
		if resp, body := get(t, c, te.base+"/", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
	if n := rb.conns.Load(); n != 3 {
		t.Fatalf("backend saw %d connections, want 3 (a connection with extra bytes was reused)", n)
	}
}

// A body the backend cuts short reaches the client as a broken response,
// never as a whole one.
func TestH1TruncatedBodyAbortsResponse(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); ok {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
		}
	})
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	for _, h2 := range []bool{false, true} {
		resp, err := te.client(h2).Get(te.base + "/")
		if err == nil { // the header may have gone out before the cut
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatalf("h2=%v: a cut body was read as whole", h2)
		}
	}
	if !strings.Contains(te.logs.String(), "backend response cut short") {
		t.Errorf("no log line:\n%s", te.logs.String())
	}
}

// A client that goes away while the backend thinks, or while it stalls
// in the middle of a body, makes the edge close the backend connection;
// the access log says 499 when no answer went out.
func TestH1ClientGoneClosesBackendConnection(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"before the header", ""},
		{"mid-body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan struct{})
			rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
				if _, ok := readHead(br); !ok {
					return
				}
				_, _ = io.WriteString(c, tc.answer)
				if _, err := br.ReadByte(); errors.Is(err, io.EOF) {
					close(closed)
				}
			})
			te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, te.base+"/slow", nil)
			go func() { time.Sleep(200 * time.Millisecond); cancel() }()
			if resp, err := te.client(false).Do(req); err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Fatal("want the cancelled request to fail")
				}
			}
			select {
			case <-closed:
			case <-time.After(3 * time.Second):
				t.Fatal("the backend connection stayed open after the client left")
			}
			if tc.answer == "" {
				waitFor(t, func() bool { return strings.Contains(te.logs.String(), "status=499") }, "status=499 in the access log")
			}
			if strings.Contains(te.logs.String(), "cut short") {
				t.Errorf("a client leaving was logged as the backend's fault:\n%s", te.logs.String())
			}
		})
	}
}

// A backend that takes longer than a poll slice to start its answer, and
// then sends its header in pieces, is waited for up to response_timeout.
func TestH1SlowAnswerWithinResponseTimeout(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); !ok {
			return
		}
		time.Sleep(pollSlice + 200*time.Millisecond)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(c, "Content-Length: 4\r\n\r\nslow")
	})
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	if resp, body := get(t, te.client(false), te.base+"/", nil); resp.StatusCode != 200 || body != "slow" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

// Hop-by-hop response headers, and those the backend's Connection names,
// stay between the edge and the backend; 103 Early Hints reach the
// client and leave the final response's edge headers in place; trailers
// follow a chunked body.
func TestH1RelaysResponseAsReverseProxy(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Link", "</packs/app.js>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		h.Set("Connection", "X-Internal")
		h.Set("X-Internal", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Strict-Transport-Security", "max-age=1")
		h.Set("Trailer", "X-Checksum")
		h.Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		w.(http.Flusher).Flush()
		h.Set("X-Checksum", "abc")
	}))
	t.Cleanup(be.Close)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	for _, h2 := range []bool{false, true} {
		resp, err := te.client(h2).Get(te.base + "/api/v1/statuses/1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{"ok":true}` {
			t.Fatalf("h2=%v: status %d body %q", h2, resp.StatusCode, body)
		}
		for _, k := range []string{"X-Internal", "Keep-Alive", "Connection"} {
			if v := resp.Header.Get(k); v != "" {
				t.Errorf("h2=%v: client saw %s: %q", h2, k, v)
			}
		}
		if v := resp.Header.Values("Strict-Transport-Security"); len(v) != 1 || v[0] != "max-age=63072000; includeSubDomains" {
			t.Errorf("h2=%v: HSTS = %q, want the edge's alone", h2, v)
		}
		if v := resp.Trailer.Get("X-Checksum"); v != "abc" {
			t.Errorf("h2=%v: trailer X-Checksum = %q", h2, v)
		}
	}
}

// Server-sent events on the web route are passed on as they come.
func TestH1StreamsEventStream(t *testing.T) {
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
	}))
	t.Cleanup(be.Close)
	t.Cleanup(func() { close(release) })
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	resp, err := te.client(false).Get(te.base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
}

// Inbox deliveries are signed over the query as sent: a query Go's
// ReverseProxy would re-encode (one with ";") reaches the backend as it
// was, on the fast path and on the general one.
func TestQueryWithSemicolonUnchanged(t *testing.T) {
	be, seenc := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	const q = "b=2;a=1&c=%zz"
	c := te.client(false)
	if resp, _ := get(t, c, te.base+"/users/a/outbox?"+q, nil); resp.StatusCode != 200 {
		t.Fatalf("GET status %d", resp.StatusCode)
	}
	if s := <-seenc; s.RawQuery != q {
		t.Errorf("GET: backend saw query %q, want %q", s.RawQuery, q)
	}
	resp, err := c.Post(te.base+"/users/a/inbox?"+q, "application/activity+json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-seenc; s.RawQuery != q || string(s.Body) != "{}" {
		t.Errorf("POST: backend saw query %q body %q", s.RawQuery, s.Body)
	}
}

// Attack: a header value with a line break would split the request to
// the backend; it is refused as http.Transport refuses it.
func TestAttackH1HeaderInjectionRefused(t *testing.T) {
	c := newH1Client(&httpTarget{scheme: "http", host: "127.0.0.1:1"}, testBackendSettings(), &chain{})
	for _, h := range []http.Header{
		{"X-A": {"1\r\nX-Forwarded-For: 10.0.0.1"}},
		{"X-A": {"1\nGET / HTTP/1.1"}},
		{"Bad Name": {"1"}},
	} {
		r := &http.Request{Method: http.MethodGet, Host: "example.test", Header: h, URL: &url.URL{Path: "/"}}
		if _, err := c.checkHeaders(r); err == nil {
			t.Errorf("%q accepted", h)
		}
	}
	r := &http.Request{Method: http.MethodGet, Host: "exa mple", Header: http.Header{}, URL: &url.URL{Path: "/"}}
	if _, err := c.checkHeaders(r); err == nil {
		t.Error("a Host with a space was accepted")
	}
}

// Idle connections older than the idle time are closed by the reaper,
// with no request to notice them.
func TestH1ReaperClosesIdleConnections(t *testing.T) {
	gone := make(chan struct{}, 4)
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				gone <- struct{}{}
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newH1Client(&httpTarget{scheme: "http", host: rb.ln.Addr().String()}, testBackendSettings(), &chain{})
	c.idleTime = 100 * time.Millisecond
	defer c.closeIdle()
	pc, err := c.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.put(pc, true)
	select {
	case <-gone:
	case <-time.After(3 * time.Second):
		t.Fatal("an idle connection outlived the idle time")
	}
	c.mu.Lock()
	n, armed := len(c.idle), c.reaper != nil
	c.mu.Unlock()
	if n != 0 || armed {
		t.Fatalf("pool after reaping: %d idle, reaper armed %v", n, armed)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// testBackendSettings is the preset's [backend].
func testBackendSettings() configs.Backend {
	cfg, err := configs.Default(configs.PresetMastodon)
	if err != nil {
		panic(err)
	}
	return cfg.Backend
}

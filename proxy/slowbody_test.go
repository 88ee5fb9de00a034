package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAttackSlowBodyCut: a client that sends its headers at once and then
// trickles its body (R-U-Dead-Yet) is answered 408 once the body pauses
// longer than the body idle timeout, and its connection is closed; over
// HTTP/2 the stalled stream ends. A body that keeps coming, however
// slowly, is not cut.
func TestAttackSlowBodyCut(t *testing.T) {
	be, _ := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{BodyIdleTimeout: 300 * time.Millisecond})

	t.Run("HTTP/1.1 stalled", func(t *testing.T) {
		start := time.Now()
		_, br, resp := rawExchange(t, te, "POST /inbox HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/activity+json\r\nContent-Length: 100\r\n\r\n{\"a\":")
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Fatalf("status %d (close %v), want 408 and Connection: close", resp.StatusCode, resp.Close)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("answered after %v", d)
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Fatalf("the connection stayed open: %q %v", rest, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})

	t.Run("HTTP/2 stalled", func(t *testing.T) { postStalledBody(t, te.client(true), te.base) })

	t.Run("slow but steady body passes", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 10; i++ {
				time.Sleep(100 * time.Millisecond)
				_, _ = io.WriteString(pw, "x")
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, te.base+"/inbox", pr)
		req.ContentLength = 10
		resp, err := te.client(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// TestSlowAnswerAfterBodyNotCut: the body idle timeout ends with the body;
// a backend that answers long after it, on HTTP/1.1 and HTTP/2, is waited
// for, and the connection serves the next request.
func TestSlowAnswerAfterBodyNotCut(t *testing.T) {
	slow := newSlowBackend(t, 800*time.Millisecond)
	te := startEdge(t, testConfig(t, slow, ""), Options{BodyIdleTimeout: 200 * time.Millisecond})
	for _, h2 := range []bool{false, true} {
		c := te.client(h2)
		for i := 0; i < 2; i++ {
			resp, err := c.Post(te.base+"/inbox", "application/activity+json", strings.NewReader(`{"type":"Like"}`))
			if err != nil {
				t.Fatalf("h2=%v #%d: %v", h2, i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != `{"type":"Like"}` {
				t.Fatalf("h2=%v #%d: %d %q", h2, i, resp.StatusCode, b)
			}
		}
	}
}

// newSlowBackend echoes a request's body after delay.
func newSlowBackend(t *testing.T, delay time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(delay)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAttackSlowBodyCutHTTP3: the body idle timeout holds over HTTP/3 too.
func TestAttackSlowBodyCutHTTP3(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.HTTP3 = true
	te := startEdge(t, cfg, Options{BodyIdleTimeout: 300 * time.Millisecond})
	postStalledBody(t, te.h3Client(t), te.base)
}

// postStalledBody posts the start of a 100-byte body and stalls: the edge
// must answer 408 or end the stream within a few seconds.
func postStalledBody(t *testing.T, c *http.Client, base string) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, `{"a":`) }()
	req, _ := http.NewRequest(http.MethodPost, base+"/inbox", pr)
	req.ContentLength = 100
	start := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408 or a reset stream", resp.StatusCode)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("ended after %v (%v)", d, err)
	}
}

// TestAttackSlowBodyOfRefusedRequestCut: a request answered without its
// body being read (a 429, a refused sign-up) still has its body read by
// the server before the answer, to keep the connection usable; a client
// that stalls that body is cut by the same idle timeout instead of
// holding the connection for ever.
func TestAttackSlowBodyOfRefusedRequestCut(t *testing.T) {
	be, seenc := recordingBackend(t)
	refuse := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusTooManyRequests) })
	}
	te := startEdge(t, testConfig(t, be.URL, ""), Options{BodyIdleTimeout: 300 * time.Millisecond, Guards: []func(http.Handler) http.Handler{refuse}})
	conn := te.rawTLS(t)
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /auth HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nuser"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("the connection stayed open after %v: %v", time.Since(start), err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cut after %v", d)
	}
	if len(seenc) != 0 {
		t.Fatal("the refused request reached the backend")
	}
}

// rawExchange sends raw on a new HTTP/1.1 connection and reads the whole
// response; the reader holds what came after it.
func rawExchange(t *testing.T, te *testEdge, raw string) (*tls.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn := te.rawTLS(t)
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return conn, br, resp
}

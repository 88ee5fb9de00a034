package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAttackRequestSmuggling sends requests whose framing two parsers could
// read differently; the edge must refuse them and never forward a second,
// smuggled request.
func TestAttackRequestSmuggling(t *testing.T) {
	be, seenc := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	rows := []struct{ name, raw string }{
		{"duplicate-cl", "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{"te-obfuscated", "POST /a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"te-identity-chunked", "POST /a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n"},
		{"bad-chunk-size", "POST /a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{"chunk-size-overflow", "POST /a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
		{"bare-lf-header", "GET /a HTTP/1.1\nHost: localhost\nContent-Length : 5\n\nhello"},
		{"space-before-colon", "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length : 5\r\n\r\nhello"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			for len(seenc) > 0 {
				<-seenc
			}
			conn := te.rawTLS(t)
			if _, err := io.WriteString(conn, row.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Fatalf("accepted: %d", resp.StatusCode)
				}
				if resp2, err := http.ReadResponse(br, nil); err == nil {
					t.Fatalf("a second response on the connection: %d", resp2.StatusCode)
				}
			}
			deadline := time.After(200 * time.Millisecond)
			for {
				select {
				case s := <-seenc:
					if s.Path == "/smuggled" {
						t.Fatal("the smuggled request reached the backend")
					}
					if s.BodyErr == nil && s.Method == http.MethodPost && !strings.Contains(row.name, "chunk") {
						t.Fatalf("backend got a complete ambiguous request %q", s.Body)
					}
					continue
				case <-deadline:
				}
				break
			}
		})
	}
}

// TestAttackCLPlusTEReframed: Go's server follows RFC 9112 section 6.3 for
// a request with both Content-Length and Transfer-Encoding: chunked wins
// and Content-Length is removed. The edge re-frames every request it
// forwards, so the backend reads exactly the bytes the edge read and no
// leftover can become a request on the backend connection.
func TestAttackCLPlusTEReframed(t *testing.T) {
	be, seenc := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	conn := te.rawTLS(t)
	raw := "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := <-seenc
	if string(s.Body) != "hello" || s.Header.Get("Content-Length") == "4" {
		t.Fatalf("backend read %q with Content-Length %q", s.Body, s.Header.Get("Content-Length"))
	}
	select {
	case s := <-seenc:
		t.Fatalf("a second request reached the backend: %s %s", s.Method, s.Path)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestAttackSlowlorisHeadersCut(t *testing.T) {
	be, seenc := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Server.ReadHeaderTimeout = 300 * time.Millisecond
	te := startEdge(t, cfg, Options{})
	conn := te.rawTLS(t)
	start := time.Now()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\n"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		time.Sleep(50 * time.Millisecond)
		if _, err := io.WriteString(conn, "X-Slow: 1\r\n"); err != nil {
			break
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("connection still answered after the header timeout")
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("cut after %v", d)
	}
	if len(seenc) != 0 {
		t.Fatal("the slow request reached the backend")
	}
}

func TestAttackConnectTunnelRefused(t *testing.T) {
	be, seenc := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	conn := te.rawTLS(t)
	if _, err := io.WriteString(conn, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || len(seenc) != 0 {
		t.Fatalf("CONNECT: %d, backend saw %d requests", resp.StatusCode, len(seenc))
	}
}

// TestAttackOpaqueRequestTarget: a request target such as "http:x" parses
// as an opaque URL, which would reach the backend as a bare "x" (or, with
// a scheme and "//", as an absolute URI naming another host). nginx
// answers 400; so does the edge, and the backend sees nothing.
func TestAttackOpaqueRequestTarget(t *testing.T) {
	be, seenc := recordingBackend(t)
	te := startEdge(t, testConfig(t, be.URL, ""), Options{})
	for _, target := range []string{"http:x", "https:evil.example/a", "mailto:a@b", "x:/a"} {
		for _, method := range []string{"GET", "POST"} {
			conn := te.rawTLS(t)
			raw := method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
			if _, err := io.WriteString(conn, raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%s %s: %v", method, target, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "request target") {
				t.Errorf("%s %s: %d %q, want the edge's 400", method, target, resp.StatusCode, body)
			}
			select {
			case s := <-seenc:
				t.Errorf("%s %s reached the backend as %q", method, target, s.Path)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// bigBody is larger than what the loopback socket buffers of both ends
// can hold, so a client that does not read blocks the writer.
var bigBody = bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB

// TestAttackSlowReadCut: a client that asks for a large answer and never
// reads it (a slow-read attack) is cut once one write has been blocked
// for the send timeout, on the fast path, on ReverseProxy's path and for
// a static file; the request ends and its connection is closed.
func TestAttackSlowReadCut(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(bigBody)
	}))
	t.Cleanup(web.Close)
	cfg := testConfig(t, web.URL, "")
	cfg.Backend.StaticRoot = staticTree(t)
	if err := os.WriteFile(filepath.Join(cfg.Backend.StaticRoot, "system", "big.bin"), bigBody, 0o644); err != nil {
		t.Fatal(err)
	}
	te := startEdge(t, cfg, Options{SendTimeout: 300 * time.Millisecond})
	for _, tc := range []struct{ name, raw, path string }{
		{"fast path", "GET /big-get HTTP/1.1\r\nHost: localhost\r\n\r\n", "/big-get"},
		{"reverse proxy", "POST /big-post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi", "/big-post"},
		{"static file", "GET /system/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n", "/system/big.bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := te.rawTLS(t)
			if _, err := io.WriteString(conn, tc.raw); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return strings.Contains(te.logs.String(), "path="+tc.path) }, "the request to end")
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.Copy(io.Discard, conn) // what the buffers held, then the close
			if n >= int64(len(bigBody)) {
				t.Fatalf("read %d bytes: the whole answer came through", n)
			}
		})
	}
	t.Run("HTTP/2", func(t *testing.T) {
		resp, err := te.client(true).Get(te.base + "/big-h2")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("proto %s", resp.Proto)
		}
		// flow control stops the edge once the client's windows are full
		waitFor(t, func() bool { return strings.Contains(te.logs.String(), "path=/big-h2") }, "the stream to end")
	})
}

// TestSlowButSteadyReaderNotCut: the send timeout bounds each write, not
// the whole answer; a client reading steadily but slowly gets all of it.
func TestSlowButSteadyReaderNotCut(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bigBody) }))
	t.Cleanup(web.Close)
	te := startEdge(t, testConfig(t, web.URL, ""), Options{SendTimeout: 300 * time.Millisecond})
	conn := te.rawTLS(t)
	if _, err := io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	var got int64
	for {
		n, err := io.CopyN(io.Discard, resp.Body, 2<<20)
		got += n
		if err != nil {
			break
		}
		time.Sleep(60 * time.Millisecond)
	}
	if got != int64(len(bigBody)) {
		t.Fatalf("got %d of %d bytes in %v", got, len(bigBody), time.Since(start))
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("the read took only %v: not slower than the send timeout", d)
	}
}

// TestLongStreamsOutliveSendTimeout: a websocket that idles on a
// connection whose earlier request armed the send timeout, and SSE events
// further apart than the timeout, are not cut.
func TestLongStreamsOutliveSendTimeout(t *testing.T) {
	web, _ := recordingBackend(t)
	next := make(chan struct{})
	st := streamingBackend(t, next)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{SendTimeout: 200 * time.Millisecond})

	wc, err := websocket.NewConfig("wss://localhost/api/v1/streaming/ws", "https://localhost")
	if err != nil {
		t.Fatal(err)
	}
	conn, br, _ := rawExchange(t, te, "GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n")
	time.Sleep(400 * time.Millisecond) // the first request's deadline has passed
	ws, err := websocket.NewClient(wc, readWriteConn{br, conn})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i := 0; i < 2; i++ {
		time.Sleep(400 * time.Millisecond)
		if err := websocket.Message.Send(ws, "ping"); err != nil {
			t.Fatal(err)
		}
		var pong string
		if err := websocket.Message.Receive(ws, &pong); err != nil || pong != "ping" {
			t.Fatalf("#%d: %q %v", i, pong, err)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, te.base+"/api/v1/streaming/sse", nil)
	resp, err := te.client(false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := bufio.NewReader(resp.Body)
	readEvent := func() string {
		var b strings.Builder
		for {
			line, err := sse.ReadString('\n')
			if err != nil {
				t.Fatalf("SSE: %v after %q", err, b.String())
			}
			if line == "\n" {
				return b.String()
			}
			b.WriteString(line)
		}
	}
	if ev := readEvent(); !strings.Contains(ev, "data: one") {
		t.Fatalf("first event %q", ev)
	}
	time.Sleep(500 * time.Millisecond)
	next <- struct{}{}
	if ev := readEvent(); !strings.Contains(ev, "data: two") {
		t.Fatalf("second event %q", ev)
	}
}

// readWriteConn reads through the buffered reader that already holds what
// followed the first response.
type readWriteConn struct {
	r *bufio.Reader
	*tls.Conn
}

func (c readWriteConn) Read(p []byte) (int, error) { return c.r.Read(p) }

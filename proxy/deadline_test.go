package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Deadlines that outlive a request: the lean client leaves a backend
// connection's read deadline in place for the next exchange; it must
// never cut a later request. And each request on a kept-alive client
// connection has its own send timeout (net/http clears the connection's
// write deadline after each request, so none can be shared).

// A pooled backend connection idle for longer than the wait slice (its
// read deadline passed meanwhile) is reused, not taken for one the
// backend wrote on.
func TestH1ConnReusedAfterItsDeadlinePassed(t *testing.T) {
	rb := startRawBackend(t, answerEach("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	c := te.client(false)
	for i := 0; i < 2; i++ {
		if i > 0 {
			time.Sleep(pollSlice + 200*time.Millisecond)
		}
		if resp, body := get(t, c, te.base+"/api/v1/instance", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
	if n := rb.conns.Load(); n != 1 {
		t.Fatalf("backend saw %d connections, want 1 (the idle one was dropped)", n)
	}
}

// A body that comes slowly after a quick header (longer than the wait
// slice whose deadline the header was read under) is relayed whole.
func TestH1SlowBodyAfterQuickHeaderRelayedWhole(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); !ok {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
		time.Sleep(pollSlice + 500*time.Millisecond)
		_, _ = io.WriteString(c, "-last")
	})
	te := startEdge(t, testConfig(t, rb.url(), ""), Options{})
	if resp, body := get(t, te.client(false), te.base+"/media/slow", nil); resp.StatusCode != 200 || body != "first-last" {
		t.Fatalf("status %d body %q, want the whole body", resp.StatusCode, body)
	}
}

// An earlier request's send timeout does not cut a later request on the
// same connection after it idled past it; and a client that stops
// reading a later answer is still cut.
func TestSendTimeoutOfEachRequestOnAKeptAliveConnection(t *testing.T) {
	web := startRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, ok := readHead(br)
			if !ok {
				return
			}
			if req.URL.Path == "/big" {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(bigBody))+"\r\n\r\n")
				_, _ = c.Write(bigBody)
				continue
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	te := startEdge(t, testConfig(t, web.url(), ""), Options{SendTimeout: 300 * time.Millisecond})
	conn := te.rawTLS(t)
	br := bufio.NewReader(conn)
	ask := func(path string) *http.Response {
		t.Helper()
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp
	}
	small := func(i int) {
		t.Helper()
		resp := ask("/small")
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: status %d body %q err %v", i, resp.StatusCode, b, err)
		}
	}
	small(0)
	time.Sleep(400 * time.Millisecond) // past the deadline request 0 armed
	small(1)
	small(2)
	resp := ask("/big")
	if resp.StatusCode != 200 {
		t.Fatalf("big: status %d", resp.StatusCode)
	}
	waitFor(t, func() bool { return strings.Contains(te.logs.String(), "path=/big") }, "the big answer to be cut")
	n, _ := io.Copy(io.Discard, resp.Body)
	if n >= int64(len(bigBody)) {
		t.Fatalf("read %d bytes: the whole answer came through to a client that stopped reading", n)
	}
}

package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestHTTP3ClientThatDoesNotReadPinned pins what an earlier note took for
// a stream cut short: a quic-go client that asks for a 32 MiB answer and
// does not read it saw its request "end after ~80 ms and ~87 KB". That was
// gzip (the test uses 4 MiB, which compresses further): quic-go's client sends Accept-Encoding: gzip, the repetitive body
// compresses to ~87 KB, which fits the client's flow-control window, so the
// edge sent the whole answer at once and the access line counted the
// compressed bytes; the client later reads all 32 MiB. An answer that does
// not compress fills quic-go's initial stream window (512 KiB), the edge's
// write blocks, and the send timeout cuts it (the client's read then fails
// with H3_REQUEST_CANCELLED): the slow-read defence, as over HTTP/1.1 and 2.
func TestHTTP3ClientThatDoesNotReadPinned(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/big-gzip" { // 4 MiB: gzip under -race on a busy machine stays quick
			_, _ = w.Write(bigBody[:4<<20])
			return
		}
		_, _ = w.Write(bigBody)
	}))
	t.Cleanup(web.Close)
	cfg := testConfig(t, web.URL, "")
	cfg.Server.HTTP3 = true
	const send = 400 * time.Millisecond
	te := startEdge(t, cfg, Options{SendTimeout: send})
	line := regexp.MustCompile(`path=(\S+) status=\d+ bytes=(\d+) duration=(\S+)`)
	ended := func(path string) (int64, time.Duration) {
		t.Helper()
		waitFor(t, func() bool { return bytes.Contains([]byte(te.logs.String()), []byte("path="+path+" ")) }, "the request to end")
		for _, m := range line.FindAllStringSubmatch(te.logs.String(), -1) {
			if m[1] == path {
				n, _ := strconv.ParseInt(m[2], 10, 64)
				d, _ := time.ParseDuration(m[3])
				return n, d
			}
		}
		t.Fatalf("no access line for %s", path)
		return 0, 0
	}

	t.Run("compressible: sent whole, gzipped", func(t *testing.T) {
		resp, err := te.h3Client(t).Get(te.base + "/big-gzip")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, d := ended("/big-gzip") // without a byte read
		if n > 1<<20 {
			t.Fatalf("access line: %d bytes after %v; want the compressed size", n, d)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, bigBody[:4<<20]) {
			t.Fatalf("read %d of %d bytes: %v", len(got), 4<<20, err)
		}
	})
	t.Run("incompressible: flow control, then the send timeout", func(t *testing.T) {
		c := te.h3Client(t)
		c.Transport.(*http3.Transport).DisableCompression = true
		resp, err := c.Get(te.base + "/big-plain")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, d := ended("/big-plain")
		if n < 64<<10 || n > 1<<20 || d < send {
			t.Fatalf("access line: %d bytes after %v; want about the 512 KiB window, cut at the %v send timeout", n, d, send)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("the cut stream read to its end")
		}
	})
}

// TestSSEEachEventFlushedOverH1H2H3: the backend sends an event only once
// the client has the one before, over HTTP/1.1, HTTP/2 and HTTP/3, so an
// event held in any buffer of the edge stalls the test.
func TestSSEEachEventFlushedOverH1H2H3(t *testing.T) {
	web, _ := recordingBackend(t)
	got := make(chan struct{})
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range 5 {
			_, _ = io.WriteString(w, "event: update\ndata: "+strconv.Itoa(i)+"\n\n")
			_ = rc.Flush()
			select {
			case <-got:
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Second):
				return
			}
		}
	}))
	t.Cleanup(sse.Close)
	cfg := testConfig(t, web.URL, sse.URL)
	cfg.Server.HTTP3 = true
	te := startEdge(t, cfg, Options{})
	for proto, c := range map[int]*http.Client{1: te.client(false), 2: te.client(true), 3: te.h3Client(t)} {
		t.Run("HTTP/"+strconv.Itoa(proto), func(t *testing.T) {
			resp, err := c.Get(te.base + "/api/v1/streaming/public")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != proto {
				t.Fatalf("spoke %s", resp.Proto)
			}
			buf := make([]byte, 256)
			for i := range 5 {
				want := "event: update\ndata: " + strconv.Itoa(i) + "\n\n"
				var have []byte
				deadline := time.Now().Add(3 * time.Second)
				for len(have) < len(want) {
					if time.Now().After(deadline) {
						t.Fatalf("event %d held back; have %q", i, have)
					}
					n, err := resp.Body.Read(buf)
					have = append(have, buf[:n]...)
					if err != nil {
						t.Fatalf("event %d: %v after %q", i, err, have)
					}
				}
				if string(have) != want {
					t.Fatalf("event %d: %q", i, have)
				}
				got <- struct{}{}
			}
		})
	}
}

package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// echoWebsocket is a streaming backend: websockets echo, SSE sends an
// event, waits for next, then sends another.
func streamingBackend(t *testing.T, next chan struct{}) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/api/v1/streaming/ws", websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	mux.HandleFunc("/api/v1/streaming/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: update\ndata: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: update\ndata: two\n\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func dialWebsocket(t *testing.T, te *testEdge) *websocket.Conn {
	t.Helper()
	wc, err := websocket.NewConfig("wss://localhost/api/v1/streaming/ws", "https://localhost")
	if err != nil {
		t.Fatal(err)
	}
	wc.TlsConfig = &tls.Config{RootCAs: te.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
	conn, err := tls.Dial("tcp", te.Edge.Addr().String(), wc.TlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(wc, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func TestWebsocketRoundTripThroughStreamingRoute(t *testing.T) {
	web, webSeen := recordingBackend(t)
	st := streamingBackend(t, nil)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
	ws := dialWebsocket(t, te)
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo %q, %v", got, err)
		}
		time.Sleep(20 * time.Millisecond) // it stays open between messages
	}
	if len(webSeen) != 0 {
		t.Fatal("the websocket went to the web backend")
	}
}

func TestSSEFlushesPromptly(t *testing.T) {
	web, _ := recordingBackend(t)
	next := make(chan struct{})
	st := streamingBackend(t, next)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
	for _, h2 := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodGet, te.base+"/api/v1/streaming/sse", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := te.client(h2).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		done := make(chan string, 1)
		go func() {
			var sb strings.Builder
			for range 3 {
				l, _ := br.ReadString('\n')
				sb.WriteString(l)
			}
			done <- sb.String()
		}()
		select {
		case got := <-done:
			if got != "event: update\ndata: one\n\n" {
				t.Fatalf("first event %q", got)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("h2=%v: the first event was buffered", h2)
		}
		if resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("SSE compressed: %q", resp.Header.Get("Content-Encoding"))
		}
		next <- struct{}{}
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if string(rest) != "event: update\ndata: two\n\n" {
			t.Fatalf("second event %q", rest)
		}
	}
	if !strings.Contains(te.logs.String(), "route=streaming") {
		t.Fatalf("access log lacks route=streaming:\n%s", te.logs.String())
	}
}

func TestShutdownDrainsInFlightAndClosesWebsocket(t *testing.T) {
	started := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "finished")
	}))
	t.Cleanup(slow.Close)
	st := streamingBackend(t, nil)
	te := startEdge(t, testConfig(t, slow.URL, st.URL), Options{})
	ws := dialWebsocket(t, te)
	if err := websocket.Message.Send(ws, "ping"); err != nil {
		t.Fatal(err)
	}
	var pong string
	if err := websocket.Message.Receive(ws, &pong); err != nil {
		t.Fatal(err)
	}
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := te.client(false).Get(te.base + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := te.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	var more string
	if err := websocket.Message.Receive(ws, &more); err == nil {
		t.Fatalf("websocket still open after Shutdown, got %q", more)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if _, err := te.client(false).Get(te.base + "/"); err == nil {
		t.Fatal("a request was accepted after Shutdown")
	}
}

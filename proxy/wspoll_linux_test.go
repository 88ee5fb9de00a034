package proxy

import (
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fedigate/fedigate/internal/wsload"
)

// TestWebsocketPollerFailureFallsBackToGoroutines: idle websockets wait
// on the shared epoll; when epoll_wait fails for good, the ones already
// idle are woken and wait in goroutines from then on, and new ones too:
// none hangs on an epoll nobody reads.
func TestWebsocketPollerFailureFallsBackToGoroutines(t *testing.T) {
	web, _ := recordingBackend(t)
	_, st := wsBackend(t)
	logs := &logBuffer{}
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{Logger: logs.Logger()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idle := dialWS(t, te, nil)
	if err := wsload.Echo(ctx, idle, "before"); err != nil {
		t.Fatal(err)
	}
	p := sharedPoller()
	if p == nil {
		t.Fatal("no epoll on linux")
	}
	time.Sleep(50 * time.Millisecond) // both directions idle, armed on the poller
	p.mu.Lock()
	armed := len(p.regs)
	p.mu.Unlock()
	if armed == 0 {
		t.Fatal("an idle websocket is not waiting on the poller")
	}
	t.Cleanup(func() { poller.Store(newPoller()) }) // the tests after this one get a working poller
	p.fail(errors.New("injected epoll_wait failure"))
	if logs.Count("epoll_wait failed") != 1 || logs.Count("injected epoll_wait failure") != 1 {
		t.Errorf("the failure is not one line in the edge's log:\n%s", logs)
	}
	after := dialWS(t, te, nil)
	for i, conn := range [...]*websocket.Conn{idle, after} { // opened before the failure, and after it
		for _, size := range []int{1, 70_000} {
			if err := wsload.Echo(ctx, conn, strings.Repeat("y", size)); err != nil {
				t.Fatalf("websocket %d, %d bytes after the failure: %v", i, size, err)
			}
		}
	}
}

// edgeGoroutines counts the goroutines running the edge's own code (a
// frame of this package outside the tests): the client and the backend
// of these tests run in the same process, in other packages.
func edgeGoroutines(t *testing.T) int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "fedigate/proxy.") && !strings.Contains(g, "_test.go") {
			n++
		}
	}
	return n
}

// TestIdleWebsocketHoldsNoGoroutine: once a websocket is idle, the edge
// holds no goroutine for it (both directions wait on the shared epoll),
// and it still relays both ways when data comes.
func TestIdleWebsocketHoldsNoGoroutine(t *testing.T) {
	web, _ := recordingBackend(t)
	_, st := wsBackend(t)
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	warm := dialWS(t, te, nil) // the poller's own goroutine starts with the first
	if err := wsload.Echo(ctx, warm, "warm"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	before := edgeGoroutines(t)
	const n = 40
	conns, err := te.wsClient().OpenIdle(ctx, wsURL, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wsload.CloseAll(conns) })
	var after int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if after = edgeGoroutines(t); after-before < n/4 || time.Now().After(deadline) {
			break
		}
	}
	if after-before >= n/4 { // a goroutine per websocket would be n, or 2n
		t.Fatalf("%d idle websockets: the edge runs %d goroutines more (%d -> %d)", n, after-before, before, after)
	}
	t.Logf("%d idle websockets: edge goroutines %d -> %d", n, before, after)
	for i, ws := range conns[:4] {
		if err := wsload.Echo(ctx, ws, "after "+strings.Repeat("z", i*9_000)); err != nil {
			t.Fatalf("websocket %d after idling: %v", i, err)
		}
	}
}

package proxy

import (
	"context"
	"errors"
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
	te := startEdge(t, testConfig(t, web.URL, st.URL), Options{})
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
	after := dialWS(t, te, nil)
	for i, conn := range [...]*websocket.Conn{idle, after} { // opened before the failure, and after it
		for _, size := range []int{1, 70_000} {
			if err := wsload.Echo(ctx, conn, strings.Repeat("y", size)); err != nil {
				t.Fatalf("websocket %d, %d bytes after the failure: %v", i, size, err)
			}
		}
	}
}

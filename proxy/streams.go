package proxy

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/fedigate/fedigate/ratelimit"
)

// streams counts the open streams (websockets and SSE, anything on the
// streaming route) per client, for server.max_streams_per_client, and all
// of them, so that Shutdown can wait until they have ended. It outlives
// the chains: a stream opened before a reload keeps its slot until it
// ends. Clients are counted as the rate limits count them (IPv6 per
// ratelimit.ipv6_prefix network), through ratelimit.Keyer.
type streams struct {
	mu      sync.Mutex
	open    map[ratelimit.ClientKey]int
	total   int
	ws      map[*wsConn]struct{} // open websockets, told when the edge shuts down
	closing bool                 // the edge shuts down
	watch   sync.Once            // registers goAway on the edge's stream context
}

// streamSlot is one admitted stream; release frees it, once.
type streamSlot struct {
	s    *streams
	key  ratelimit.ClientKey
	once sync.Once
}

// admit takes a slot for key unless the client already holds max.
func (s *streams) admit(key ratelimit.ClientKey, max int) (*streamSlot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] >= max {
		return nil, false
	}
	if s.open == nil {
		s.open = map[ratelimit.ClientKey]int{}
	}
	s.open[key]++
	s.total++
	return &streamSlot{s: s, key: key}, true
}

func (sl *streamSlot) release() {
	sl.once.Do(func() {
		s := sl.s
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.open[sl.key]--; s.open[sl.key] <= 0 {
			delete(s.open, sl.key)
		}
		s.total--
	})
}

// count is the number of open streams.
func (s *streams) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// wait returns when every stream has ended, or ctx ends.
func (s *streams) wait(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.count() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// addWS tracks ws until removeWS; once ctx (the edge's stream context)
// ends, every websocket is told to go away (one watch for all of them,
// rather than a context.AfterFunc each).
func (s *streams) addWS(ctx context.Context, ws *wsConn) {
	s.watch.Do(func() { context.AfterFunc(ctx, s.goAway) })
	s.mu.Lock()
	closing := s.closing
	if !closing {
		if s.ws == nil {
			s.ws = map[*wsConn]struct{}{}
		}
		s.ws[ws] = struct{}{}
	}
	s.mu.Unlock()
	if closing {
		ws.shutdown()
	}
}

func (s *streams) removeWS(ws *wsConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ws, ws)
}

func (s *streams) goAway() {
	s.mu.Lock()
	s.closing = true
	open := make([]*wsConn, 0, len(s.ws))
	for ws := range s.ws {
		open = append(open, ws)
	}
	s.mu.Unlock()
	for _, ws := range open {
		ws.shutdown()
	}
}

// IsStreaming reports whether the edge sends r to the streaming backend
// (for the rate limits: a token may come in Sec-WebSocket-Protocol
// there). Outside the edge it is false.
func IsStreaming(r *http.Request) bool {
	st := stateOf(r)
	return st != nil && st.stream
}

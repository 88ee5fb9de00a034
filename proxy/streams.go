package proxy

import (
	"context"
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
	mu    sync.Mutex
	open  map[ratelimit.ClientKey]int
	total int
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

package signupgate

import (
	"context"
	"encoding/hex"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// spentStore remembers used pass and challenge ids until they expire.
// take is one atomic step: of two concurrent takes of one id, one wins.
type spentStore interface {
	take(ctx context.Context, id [12]byte, until time.Time) (bool, error)
	give(ctx context.Context, id [12]byte) error // undo a take (the sign-up was refused)
}

// memorySpent is the single-gateway store; expired ids are swept as new
// ones come in, so it holds at most what was taken within pass_ttl.
type memorySpent struct {
	mu    sync.Mutex
	ids   map[[12]byte]time.Time
	now   func() time.Time
	sweep time.Time
}

func newMemorySpent(now func() time.Time) *memorySpent {
	return &memorySpent{ids: map[[12]byte]time.Time{}, now: now}
}

func (m *memorySpent) take(_ context.Context, id [12]byte, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Sub(m.sweep) > time.Minute {
		for k, exp := range m.ids {
			if !now.Before(exp) {
				delete(m.ids, k)
			}
		}
		m.sweep = now
	}
	if exp, ok := m.ids[id]; ok && now.Before(exp) {
		return false, nil
	}
	m.ids[id] = until
	return true, nil
}

func (m *memorySpent) give(_ context.Context, id [12]byte) error {
	m.mu.Lock()
	delete(m.ids, id)
	m.mu.Unlock()
	return nil
}

// redisSpent shares spent ids between gateways: SET NX PX is the atomic
// take; keys expire with the pass.
type redisSpent struct {
	c   redis.UniversalClient
	now func() time.Time
}

func redisKey(id [12]byte) string { return "fedigate:gate:{" + hex.EncodeToString(id[:]) + "}" }

func (r *redisSpent) take(ctx context.Context, id [12]byte, until time.Time) (bool, error) {
	ttl := until.Sub(r.now())
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	return r.c.SetNX(ctx, redisKey(id), 1, ttl).Result()
}

func (r *redisSpent) give(ctx context.Context, id [12]byte) error {
	return r.c.Del(ctx, redisKey(id)).Err()
}

package signupgate

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/ratelimit"
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

// sharedSpent is the spent-pass store of Guards built from one another by
// Reconfigure while the [ratelimit] store settings stay the same, so a
// pass spent before a reload is still spent after it. The last Guard to
// release it closes the Redis client it opened.
type sharedSpent struct {
	spentStore
	store, url string                // the [ratelimit] store and redis_url it serves
	passed     redis.UniversalClient // Options.Redis it was built on; nil = none
	owned      redis.UniversalClient // opened from url: closed with the last share

	mu   sync.Mutex
	refs int
}

// openSpent shares from's store when it serves the same settings, else
// opens one: in memory, on a passed client, or on a client opened from
// ratelimit.redis_url.
func openSpent(rl configs.RateLimit, passed redis.UniversalClient, now func() time.Time, from *Guard) (*sharedSpent, error) {
	if from != nil && from.spent != nil && from.spent.serves(rl, passed) && from.spent.acquire() {
		return from.spent, nil
	}
	s := &sharedSpent{store: rl.Store, url: rl.RedisURL, passed: passed, refs: 1}
	switch {
	case passed != nil:
		s.spentStore = &redisSpent{c: passed, now: now}
	case rl.Store == configs.StoreRedis:
		c, err := ratelimit.OpenRedis(rl.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("ratelimit.redis_url: %w", err)
		}
		s.owned, s.spentStore = c, &redisSpent{c: c, now: now}
	default:
		s.spentStore = newMemorySpent(now)
	}
	return s, nil
}

func (s *sharedSpent) serves(rl configs.RateLimit, passed redis.UniversalClient) bool {
	return s.store == rl.Store && s.passed == passed && (rl.Store != configs.StoreRedis || s.url == rl.RedisURL)
}

// acquire takes a share; false when the last share was already released.
func (s *sharedSpent) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == 0 {
		return false
	}
	s.refs++
	return true
}

func (s *sharedSpent) release() error {
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	s.mu.Unlock()
	if last && s.owned != nil {
		return s.owned.Close()
	}
	return nil
}

package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// failuresToTrip is how many store errors in a row open the breaker.
const failuresToTrip = 3

// ErrStoreDown is returned (wrapped) while the breaker skips the store.
var ErrStoreDown = errors.New("rate limit store is down")

// redisStore is a Redis client behind a circuit breaker. After
// failuresToTrip errors in a row it is marked down: decisions skip Redis
// and a background probe PINGs it every probe interval until it answers,
// then it is marked up again. Each transition is logged once. It is shared
// by the Limiters built from one another by Reconfigure and closed with
// the last of them.
type redisStore struct {
	client  redis.UniversalClient
	script  *redis.Script // slidingLog: EVALSHA, EVAL on NOSCRIPT
	owned   bool          // opened from a URL: closed with the store
	log     *slog.Logger
	probe   time.Duration
	timeout time.Duration

	down     atomic.Bool
	failures atomic.Int32
	downAt   atomic.Int64 // unix nanoseconds

	mu     sync.Mutex
	refs   int
	closed chan struct{}
	wg     sync.WaitGroup
}

func newRedisStore(c redis.UniversalClient, owned bool, log *slog.Logger, probe, timeout time.Duration) *redisStore {
	return &redisStore{client: c, script: redis.NewScript(slidingLog), owned: owned, log: log, probe: probe, timeout: timeout, refs: 1, closed: make(chan struct{})}
}

func (s *redisStore) acquire() {
	s.mu.Lock()
	s.refs++
	s.mu.Unlock()
}

// release drops one reference; the last one stops the probe and closes an
// owned client.
func (s *redisStore) release() error {
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last {
		close(s.closed)
	}
	s.mu.Unlock()
	if !last {
		return nil
	}
	s.wg.Wait()
	if s.owned {
		return s.client.Close()
	}
	return nil
}

// decide runs one decision within timeout, through the breaker.
func (s *redisStore) decide(ctx context.Context, timeout time.Duration, client string, rules []*rule, out []Result) (bool, error) {
	if s.down.Load() {
		return false, ErrStoreDown
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	allowed, err := redisDecide(tctx, s.client, s.script, client, rules, out)
	if err != nil {
		if ctx.Err() == nil { // a caller that gave up says nothing about Redis
			s.failed(err)
		}
		return false, err
	}
	s.failures.Store(0)
	return allowed, nil
}

// failed counts a store error; the one that trips the breaker logs the
// transition and starts the probe.
func (s *redisStore) failed(err error) {
	if s.failures.Add(1) < failuresToTrip || !s.down.CompareAndSwap(false, true) {
		return
	}
	s.downAt.Store(time.Now().UnixNano())
	s.log.Warn("rate limit store down", "store", "redis", "error", err.Error(), "probe_every", s.probe)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs > 0 {
		s.wg.Add(1)
		go s.probeUntilUp()
	}
}

func (s *redisStore) probeUntilUp() {
	defer s.wg.Done()
	tick := time.NewTicker(s.probe)
	defer tick.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		err := s.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.failures.Store(0)
			s.down.Store(false)
			s.log.Info("rate limit store up", "store", "redis", "down_for", time.Since(time.Unix(0, s.downAt.Load())).Round(time.Millisecond))
			return
		}
	}
}

// ready PINGs Redis.
func (s *redisStore) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return errors.Join(ErrStoreDown, err)
	}
	return nil
}

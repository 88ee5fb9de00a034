package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// Keyed is a limit of its own in a Limiter's store: at most limit events
// per period for each client and key (package federation counts
// deliveries per sending domain per client address). It uses the same
// sliding log, the same Redis script and breaker, and the same
// on_store_error as the rules; the Limiter's exempt clients are not
// counted. It lives as long as the Limiter that made it; a Keyed of the
// same name, limit and period made from a Limiter built by Reconfigure
// shares its counts.
type Keyed struct {
	l   *Limiter
	r   rule
	tab *table // memory store
}

// Keyed returns a keyed limit of limit events per period named name (the
// name of the counts in the store and of Observe's Decision.Rule).
func (l *Limiter) Keyed(name string, limit int, period time.Duration) (*Keyed, error) {
	if name == "" || limit < 1 || limit > configs.MaxRuleLimit || period < time.Millisecond {
		return nil, fmt.Errorf("ratelimit: keyed limit %q: want a name, a limit of 1 to %d and a period of at least 1ms", name, configs.MaxRuleLimit)
	}
	k := &Keyed{l: l, r: rule{name: name, limit: limit, period: period, limitText: strconv.Itoa(limit),
		id: "keyed:" + name + "|" + strconv.Itoa(limit) + "|" + strconv.FormatInt(period.Milliseconds(), 10)}}
	l.keyedMu.Lock()
	defer l.keyedMu.Unlock()
	if l.keyedClosed {
		return nil, errors.New("ratelimit: the Limiter is closed")
	}
	if l.mem != nil {
		k.tab = l.mem.acquire(&k.r)
	}
	l.keyed = append(l.keyed, k.r.id)
	return k, nil
}

// Allow counts one event of client under key: one call, one round trip.
// IPv6 clients count by their ipv6_prefix network, as the rules do. When
// the store fails, the Result follows on_store_error and the error says
// why.
func (k *Keyed) Allow(ctx context.Context, client netip.Addr, key string) (Result, error) {
	l := k.l
	if l.exemptAll(client.Unmap()) {
		return Result{Allowed: true, Limit: k.r.limit, Remaining: k.r.limit, Reset: l.now()}, nil
	}
	var res Result
	var err error
	if k.tab != nil {
		ck := l.keyer.keyOf(client)
		// The key is folded into the client's 128 bits by a keyed hash: a
		// sender cannot choose a key whose count is another's.
		ck.front ^= maphash.String(k.tab.keySeed[0], key)
		ck.back ^= maphash.String(k.tab.keySeed[1], key)
		l.mem.decideOne(k.tab, ck, l.mem.clock(), &res)
	} else {
		_, counted := l.keyer.key(client)
		var out [1]Result
		rules := [1]*rule{&k.r}
		if _, err = l.red.decide(ctx, l.cfg.StoreTimeout, l.keyer.text(counted)+"|"+key, rules[:], out[:]); err != nil {
			out[0] = l.storeFailed(&k.r)
			err = fmt.Errorf("ratelimit: keyed limit %q: %w", k.r.name, err)
		}
		res = out[0]
	}
	if l.opts.Observe != nil {
		_, counted := l.keyer.key(client)
		l.opts.Observe(Decision{Rule: k.r.name, Client: counted, Result: res, Err: err})
	}
	return Result{res.Allowed, res.Limit, res.Remaining, res.RetryAfter, res.Reset}, err
}

// exemptAll reports whether a (unmapped) is in the section's exempt list.
func (l *Limiter) exemptAll(a netip.Addr) bool {
	for _, p := range l.cfg.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// closeKeyed releases the tables of the Keyed limits made from l.
func (l *Limiter) closeKeyed() {
	l.keyedMu.Lock()
	defer l.keyedMu.Unlock()
	l.keyedClosed = true
	if l.mem != nil {
		for _, id := range l.keyed {
			l.mem.release(id)
		}
	}
	l.keyed = nil
}

// keyedState is the Limiter's record of its Keyed limits.
type keyedState struct {
	keyedMu     sync.Mutex
	keyed       []string // table ids
	keyedClosed bool
}

package ratelimit

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// nShards is the number of independently locked shards per rule table.
const (
	shardBits = 5
	nShards   = 1 << shardBits
)

// keyBytes is the most memory one tracked client costs: its ring of
// timestamps (8*limit bytes, up to 1/8 more for the allocator's size
// classes), the entry (56 bytes), its share of the shard's index (at most
// 4 slots of 4 bytes: keyindex.go) and of the free list (at most 8
// bytes): 80 bytes besides the ring, rounded up to 160, which leaves 80
// for the ring's rounding past 1/8. (Some sizes round up further: a limit
// of 289 takes 2688 bytes, not 2601+80; 865 takes 8192, not 7785+80.)
// TestMemoryBound measures it.
func keyBytes(limit int) int64 { return 9*int64(limit) + 160 }

// memStore is the in-process store: one table per rule id, shared by the
// Limiters built from one another by Reconfigure. A table lives while a
// Limiter that uses it is open.
type memStore struct {
	maxKeys int              // per table
	base    time.Time        // timestamps are nanoseconds since base
	now     func() time.Time // nil: the monotonic clock

	mu     sync.Mutex
	tables map[string]*table
	seq    uint64
}

func newMemStore(maxKeys int, now func() time.Time) *memStore {
	m := &memStore{maxKeys: maxKeys, now: now, tables: map[string]*table{}}
	if now == nil {
		m.base = time.Now()
	} else {
		m.base = now()
	}
	return m
}

// clock returns the time as nanoseconds since base. The default reads
// only the monotonic clock (half the cost of time.Now).
func (m *memStore) clock() int64 {
	if m.now == nil {
		return int64(time.Since(m.base))
	}
	return int64(m.now().Sub(m.base))
}

// acquire returns the table of a rule, creating it when no open Limiter
// uses it yet.
func (m *memStore) acquire(r *rule) *table {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tables[r.id]; ok {
		t.refs++
		return t
	}
	m.seq++
	t := newTable(m.seq, r.limit, r.period, (m.maxKeys+nShards-1)/nShards)
	t.refs = 1
	m.tables[r.id] = t
	return t
}

func (m *memStore) release(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tables[id]; ok {
		if t.refs--; t.refs <= 0 {
			delete(m.tables, id)
		}
	}
}

// table holds one rule's sliding logs, sharded by client key.
type table struct {
	seq      uint64 // lock order across tables
	refs     int    // guarded by memStore.mu
	limit    int32
	period   int64 // nanoseconds
	perShard int
	seed     [2]uint64
	keySeed  [2]maphash.Seed // folds a Keyed limit's key into the client key
	shards   [nShards]shard
}

func newTable(seq uint64, limit int, period time.Duration, perShard int) *table {
	t := &table{seq: seq, limit: int32(limit), period: int64(period), perShard: max(perShard, 1)}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	t.seed = [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
	t.keySeed = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].head, t.shards[i].tail, t.shards[i].id = -1, -1, i
	}
	return t
}

// hash is k's keyed hash: its top shardBits bits pick the shard, the next
// ones the slot in the shard's index (keyindex.go), so an attacker cannot
// aim a set of addresses at one shard or at one run of slots.
func (t *table) hash(k clientKey) uint64 {
	// A multiplication carries every bit upwards: the top bits depend on
	// all 128 bits of the key, the low ones would not.
	return ((k.front^t.seed[0])*0x9E3779B97F4A7C15 ^ k.back ^ t.seed[1]) * 0xC2B2AE3D27D4EB4F
}

// shardOf is the shard of a key of hash h.
func (t *table) shardOf(h uint64) *shard { return &t.shards[h>>(64-shardBits)] }

// shard is a bounded map of client key to sliding log, with the entries in
// a least-recently-used list so the stalest is evicted first.
type shard struct {
	mu         sync.Mutex
	index      keyIndex // client key to entry
	ents       []entry
	free       []int32
	head, tail int32 // most and least recently used; -1 when empty
	id         int   // index in the table
	ops        uint  // decisions taken in this shard
	_          [64]byte
}

// entry is one client's sliding log: the timestamps of its admitted
// requests still inside the window, oldest first, in a ring of capacity
// limit.
type entry struct {
	key        clientKey
	ring       []int64
	start, n   int32
	prev, next int32
}

func (s *shard) unlink(i int32) {
	e := &s.ents[i]
	if e.prev >= 0 {
		s.ents[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.ents[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *shard) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.ents[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

func (s *shard) remove(t *table, i int32) {
	s.unlink(i)
	s.unindex(t, i)
	s.free = append(s.free, i)
}

// sweep drops up to n least recently used entries whose windows are
// empty, so idle clients expire without a background task.
func (s *shard) sweep(t *table, now int64, n int) {
	for ; n > 0 && s.tail >= 0; n-- {
		e := &s.ents[s.tail]
		if e.n > 0 && e.ring[e.at(t, e.n-1)] > now-t.period {
			return
		}
		s.remove(t, s.tail)
	}
}

// sweepAround sweeps s, and on every 16th decision in s also another
// shard of the table in turn, if it is not busy: so idle clients expire
// in shards that see no traffic.
func (s *shard) sweepAround(t *table, now int64) {
	s.sweep(t, now, 2)
	s.ops++
	if s.ops%16 != 0 {
		return
	}
	o := &t.shards[(s.id+1+int(s.ops/16))%nShards]
	if o != s && o.mu.TryLock() {
		o.sweep(t, now, 8)
		o.mu.Unlock()
	}
}

// get returns the entry of k (of hash h), moved to the front of the LRU
// list, creating it (evicting the stalest entry when the shard is full) if
// absent.
func (s *shard) get(t *table, h uint64, k clientKey) *entry {
	if i := s.find(h, k); i >= 0 {
		if s.head != i {
			s.unlink(i)
			s.pushFront(i)
		}
		return &s.ents[i]
	}
	var i int32
	switch {
	case len(s.free) > 0:
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
	case len(s.ents) < t.perShard:
		if len(s.ents) == cap(s.ents) { // grow, but never past the bound
			grown := make([]entry, len(s.ents), min(max(2*cap(s.ents), 8), t.perShard))
			copy(grown, s.ents)
			s.ents = grown
		}
		s.ents = append(s.ents, entry{ring: make([]int64, t.limit)})
		i = int32(len(s.ents) - 1)
	default:
		i = s.tail
		s.unlink(i)
		s.unindex(t, i)
	}
	e := &s.ents[i]
	e.key, e.start, e.n = k, 0, 0
	s.insert(t, h, i)
	s.pushFront(i)
	return e
}

// expire drops timestamps that left the window: t leaves it at t+period.
func (e *entry) expire(t *table, now int64) {
	for e.n > 0 && e.ring[e.start] <= now-t.period {
		if e.start++; e.start == t.limit {
			e.start = 0
		}
		e.n--
	}
}

func (e *entry) record(t *table, now int64) {
	if e.n > 0 {
		now = max(now, e.ring[e.at(t, e.n-1)]) // a clock that stepped back keeps the log in order
	}
	e.ring[e.at(t, e.n)] = now
	e.n++
}

// at is the ring index of the i-th oldest timestamp.
func (e *entry) at(t *table, i int32) int32 {
	if j := e.start + i; j < t.limit {
		return j
	} else {
		return j - t.limit
	}
}

// lock locks the shard of k and returns it with k's entry, its expired
// timestamps dropped.
func (t *table) lock(k clientKey, now int64) (*shard, *entry) {
	h := t.hash(k)
	s := t.shardOf(h)
	s.mu.Lock()
	s.sweepAround(t, now)
	e := s.get(t, h, k)
	e.expire(t, now)
	return s, e
}

// resetAt is when the oldest timestamp in e's log leaves the window, or
// now when the log is empty.
func (e *entry) resetAt(t *table, now int64) int64 {
	if e.n == 0 {
		return now
	}
	return e.ring[e.start] + t.period
}

// result sets r to the Result of a decision that left n timestamps in the
// client's log, the oldest leaving the window at reset. (It writes r
// field by field: a Result built whole and then copied is stored in
// pieces and reloaded in wider ones, which stalls the CPU.)
func (t *table) result(r *Result, allowed bool, n int32, reset, now int64, base time.Time) {
	r.Allowed, r.Limit, r.Remaining, r.RetryAfter = allowed, int(t.limit), int(t.limit-n), 0
	if !allowed && n >= t.limit {
		r.RetryAfter = time.Duration(reset - now)
	}
	r.Reset = base.Add(time.Duration(reset))
}

// decideOne is decide for a single table.
func (m *memStore) decideOne(t *table, k clientKey, now int64, out *Result) {
	s, e := t.lock(k, now)
	allowed := e.n < t.limit
	if allowed {
		e.record(t, now)
	}
	n, reset := e.n, e.resetAt(t, now)
	s.mu.Unlock()
	t.result(out, allowed, n, reset, now, m.base)
}

// decide admits the request for all tables or for none: it is admitted
// when every table has room for it in the client's window, and then it is
// recorded in every table. Tables are locked in seq order (so Limiters
// sharing tables in different orders cannot deadlock) and out[i] receives
// tables[i]'s result. order lists indexes of tables sorted by seq.
func (m *memStore) decide(tables []*table, order []int, k clientKey, now int64, out []Result) bool {
	var ents [maxMatch]*entry
	var shards [maxMatch]*shard
	for _, i := range order {
		shards[i], ents[i] = tables[i].lock(k, now)
	}
	allowed := true
	for i, t := range tables {
		if ents[i].n >= t.limit {
			allowed = false
		}
	}
	for i, t := range tables {
		if allowed {
			ents[i].record(t, now)
		}
		t.result(&out[i], allowed, ents[i].n, ents[i].resetAt(t, now), now, m.base)
	}
	for j := len(order) - 1; j >= 0; j-- {
		shards[order[j]].mu.Unlock()
	}
	return allowed
}

// size returns how many clients the table tracks (for tests).
func (t *table) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.index.keys
		s.mu.Unlock()
	}
	return n
}

// MemoryBound is the most memory, in bytes, the memory store can hold for
// this Limiter's rules (0 for Redis): per rule, MaxKeys*(9*limit+160).
func (l *Limiter) MemoryBound() int64 {
	var n int64
	for _, t := range l.tables {
		n += int64(t.perShard*nShards) * keyBytes(int(t.limit))
	}
	return n
}

// checkMemoryBudget refuses rules whose memory store could outgrow budget.
func checkMemoryBudget(rules []rule, maxKeys int, budget int64) error {
	keys := int64((maxKeys + nShards - 1) / nShards * nShards)
	var total int64
	biggest := ""
	var most int64
	for i := range rules {
		b := keys * keyBytes(rules[i].limit)
		total += b
		if b > most {
			most, biggest = b, rules[i].name
		}
	}
	if total > budget {
		return fmt.Errorf("ratelimit: the memory store could need %d MiB for these rules (rule %q alone %d MiB: %d clients x %d bytes), more than %d MiB: lower the limits, or use store = \"redis\"",
			total>>20, biggest, most>>20, keys, most/keys, budget>>20)
	}
	return nil
}

package cache

import (
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// Object is one stored answer: one variant of a primary key. Nothing in
// an Object changes once it is stored; an update (a 304's headers) stores
// a new one.
type Object struct {
	Secondary string   // the request's values of the fields Vary names, as keyed
	Vary      []string // canonical names from the answer's Vary
	Status    int
	Header    http.Header // the fields stored, minus those private="..." and no-cache="..." name
	Body      []byte      // the body when it is in memory
	file      *fileBody   // the body when it lies in a disk tier file (Body is nil)
	ReqTime   time.Time   // when the request that fetched it left (§4.2.3 request_time)
	RespTime  time.Time   // when its answer arrived (response_time)
	// InitialAge is the corrected initial age (§4.2.3); Lifetime the
	// freshness lifetime (§4.2.1); CC the answer's Cache-Control.
	InitialAge time.Duration
	Lifetime   time.Duration
	CC         Directives
	// cl is the Content-Length field value, ready to send.
	cl []string
}

// age is the current age (§4.2.3) at now.
func (o *Object) age(now time.Time) time.Duration {
	return o.InitialAge + max(now.Sub(o.RespTime), 0)
}

// weight is what the object holds, in bytes: fields, body (in memory, or
// in its file for the disk tier, which weighs what it writes) and a fixed
// overhead for the structures around them.
func (o *Object) weight() int64 {
	n := int64(objectOverhead+len(o.Secondary)) + o.bodySize()
	for _, v := range o.Vary {
		n += int64(len(v)) + 16
	}
	for k, vv := range o.Header {
		n += int64(len(k)) + 48
		for _, v := range vv {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// objectOverhead approximates an Object's struct, its header map's
// buckets and the slices around the fields.
const objectOverhead = 512

// maxVariants bounds the variants kept per primary key (a client cannot
// grow one entry without end by sending new Accept-Language values).
const maxVariants = 16

// Entry is every stored variant of one primary key (scheme, host, path,
// query), newest first.
type Entry struct {
	Key      string
	Variants []*Object
}

func (e *Entry) weight() int64 {
	n := int64(len(e.Key) + 64)
	for _, o := range e.Variants {
		n += o.weight()
	}
	return n
}

// ErrTooLarge: an entry over what the store takes.
var ErrTooLarge = errors.New("cache: entry too large for the store")

// Store keeps entries by primary key. hash is the Cache's hash of key; a
// store may use it or its own. Get returns nil for a key it does not
// hold; an entry given to Set is not changed afterwards by anyone.
type Store interface {
	Get(hash uint64, key []byte) *Entry
	Set(hash uint64, e *Entry) error
	Delete(hash uint64, key []byte)
	Stats() TierStats
	Close() error
}

// TierStats are a store's counters, for metrics.
type TierStats struct {
	Objects   int64
	Bytes     int64
	Evictions int64
}

// memoryStore is the memory tier: otter's W-TinyLFU with every entry
// weighed by its bytes (key, fields, body) against max_memory.
type memoryStore struct {
	c         *otter.Cache[uint64, *Entry]
	max       int64
	evictions atomic.Int64
}

func newMemoryStore(maxBytes int64) (*memoryStore, error) {
	m := &memoryStore{max: maxBytes}
	c, err := otter.New(&otter.Options[uint64, *Entry]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ uint64, e *Entry) uint32 {
			return uint32(min(e.weight(), 1<<32-1))
		},
		OnAtomicDeletion: func(ev otter.DeletionEvent[uint64, *Entry]) {
			if ev.Cause.IsEviction() {
				m.evictions.Add(1)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	m.c = c
	return m, nil
}

func (m *memoryStore) Get(hash uint64, key []byte) *Entry {
	e, ok := m.c.GetIfPresent(hash)
	if !ok || e.Key != string(key) {
		return nil // absent, or another key with the same hash
	}
	return e
}

func (m *memoryStore) Set(hash uint64, e *Entry) error {
	if e.weight() > m.max/4 {
		return ErrTooLarge
	}
	m.c.Set(hash, e)
	return nil
}

func (m *memoryStore) Delete(hash uint64, key []byte) {
	if e, ok := m.c.GetIfPresent(hash); ok && e.Key == string(key) {
		m.c.Invalidate(hash)
	}
}

func (m *memoryStore) Stats() TierStats {
	m.c.CleanUp() // the weighed size is brought up to date by maintenance
	return TierStats{Objects: int64(m.c.EstimatedSize()), Bytes: int64(m.c.WeightedSize()), Evictions: m.evictions.Load()}
}

func (m *memoryStore) Close() error {
	m.c.InvalidateAll()
	m.c.StopAllGoroutines()
	return nil
}

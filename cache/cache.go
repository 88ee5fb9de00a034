// Package cache owns fedigate's shared response cache in front of
// backend.web: what nginx's proxy_cache does for Mastodon, done to RFC
// 9111. The decisions (may this answer be stored? for how long is it
// fresh? which stored variant answers this request? must it be
// revalidated?) are pure functions in policy.go and cachecontrol.go over
// request and stored headers; keys are built in key.go; the stores
// (memory, disk) sit behind the Store interface; the HTTP handler that
// serves, fetches, coalesces and stores is in handler.go and fetch.go.
//
// The edge (package proxy) wraps only its call to the web backend with
// Cache.Handler, after the rate limit and the sign-up gate; streaming,
// websockets and static files never reach it. The config is configs.Cache.
package cache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// Result is what the cache did with one request; its String is the
// metric label and the access log's cache= value.
type Result uint8

// Results.
const (
	Bypass      Result = iota // not for the cache: unsafe method, websocket, malformed request directives
	Hit                       // a fresh stored answer
	Miss                      // fetched from the backend
	Stale                     // a stale stored answer (max-stale, stale-while-revalidate, stale-if-error)
	Coalesced                 // answered from another request's fetch
	Revalidated               // the backend said 304: the stored answer, updated
)

func (r Result) String() string {
	switch r {
	case Hit:
		return "hit"
	case Miss:
		return "miss"
	case Stale:
		return "stale"
	case Coalesced:
		return "coalesced"
	case Revalidated:
		return "revalidated"
	}
	return "bypass"
}

// Options are the parts of the cache that are not in [cache].
type Options struct {
	// Logger receives errors of the disk tier; nil = slog.Default().
	Logger *slog.Logger
	// OnResult is called once per request the cache handled, after the
	// answer; nil = none.
	OnResult func(r *http.Request, res Result)
	// Wait is the longest a miss waits for another request's fetch of the
	// same key before going to the backend itself (cmd passes
	// backend.response_timeout); 0 = 60 s.
	Wait time.Duration
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// Cache is the shared cache: its stores and the misses in flight. It is
// safe for concurrent use; Handler may wrap any number of backends.
type Cache struct {
	cfg     configs.Cache
	log     *slog.Logger
	onRes   func(*http.Request, Result)
	now     func() time.Time
	wait    atomic.Int64 // time.Duration
	mem     *memoryStore
	disk    Store // nil = no disk tier
	seed    maphash.Seed
	bufs    sync.Pool // *[]byte key buffers
	mu      sync.Mutex
	flights map[string]*flight
	// recording is the bytes the bodies being recorded hold (recorder.hold).
	recording atomic.Int64
	status    string     // Cache-Status header name, "" = none
	ages      [][]string // Age values 0..len-1, shared
	cs        statusValues
	// missValues are the Cache-Status values of fetches built so far
	// (missStatus); missMu serialises their writers.
	missValues atomic.Pointer[map[missKey][]string]
	missMu     sync.Mutex
}

// New validates cfg and builds the cache; with cfg.Dir set it opens (and
// creates, 0700) the disk tier and takes up the objects already there.
func New(cfg configs.Cache, opts Options) (*Cache, error) {
	var errs []error
	if cfg.MaxMemory < 1<<20 {
		errs = append(errs, fmt.Errorf("max_memory %d: want at least 1MB", cfg.MaxMemory))
	}
	if cfg.MaxObject <= 0 || cfg.MaxObject > cfg.MaxMemory/4 {
		errs = append(errs, fmt.Errorf("max_object %d: want more than 0 and at most a quarter of max_memory", cfg.MaxObject))
	}
	if cfg.StaleIfError < 0 || opts.Wait < 0 {
		errs = append(errs, errors.New("stale_if_error and Options.Wait must not be negative"))
	}
	if cfg.StatusHeader != "" && !validFieldName(cfg.StatusHeader) {
		errs = append(errs, fmt.Errorf("status_header %q: not a header name", cfg.StatusHeader))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &Cache{
		cfg: cfg, log: opts.Logger, onRes: opts.OnResult, now: opts.Now,
		seed: maphash.MakeSeed(), flights: map[string]*flight{},
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.wait.Store(int64(cmpOr(opts.Wait, 60*time.Second)))
	if cfg.StatusHeader != "" {
		c.status = http.CanonicalHeaderKey(cfg.StatusHeader)
	}
	c.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	c.ages = make([][]string, 4096)
	for i := range c.ages {
		c.ages[i] = []string{strconv.Itoa(i)}
	}
	c.cs = newStatusValues()
	c.missValues.Store(&map[missKey][]string{})
	m, err := newMemoryStore(cfg.MaxMemory)
	if err != nil {
		return nil, err
	}
	c.mem = m
	if cfg.Dir != "" {
		d, err := OpenDisk(cfg.Dir, cfg.MaxDisk, c.log)
		if err != nil {
			_ = m.Close()
			return nil, err
		}
		c.disk = d
	}
	return c, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Reconfigure returns the cache for cfg: this one, stored objects and
// all, when [cache] did not change (a new Wait is taken up); else a new
// one, and the caller closes this one once the new one serves.
func (c *Cache) Reconfigure(cfg configs.Cache, opts Options) (*Cache, error) {
	if reflect.DeepEqual(cfg, c.cfg) {
		c.wait.Store(int64(cmpOr(opts.Wait, 60*time.Second)))
		return c, nil
	}
	return New(cfg, opts)
}

// Close frees the memory tier and closes the disk tier (its files stay).
func (c *Cache) Close() error {
	err := c.mem.Close()
	if c.disk != nil {
		err = errors.Join(err, c.disk.Close())
	}
	return err
}

// Stats are the tiers' counters: memory, and disk (zero without one).
func (c *Cache) Stats() (mem, disk TierStats) {
	mem = c.mem.Stats()
	if c.disk != nil {
		disk = c.disk.Stats()
	}
	return mem, disk
}

// Ready reports whether the disk tier can be written (nil without one):
// for /readyz and doctor.
func (c *Cache) Ready() error {
	if c.disk == nil {
		return nil
	}
	if d, ok := c.disk.(*diskStore); ok {
		return d.ready()
	}
	return nil
}

func (c *Cache) ageValue(d time.Duration) []string {
	s := int64(d / time.Second)
	if s >= 0 && s < int64(len(c.ages)) {
		return c.ages[s]
	}
	return []string{strconv.FormatInt(s, 10)}
}

func (c *Cache) report(r *http.Request, res Result) {
	if c.onRes != nil {
		c.onRes(r, res)
	}
}

// statusValues are the Cache-Status members (RFC 9211) the cache sends.
type statusValues struct {
	hit, swr, maxStale, coalesced, bypass, method []string
}

func newStatusValues() statusValues {
	return statusValues{
		hit:       []string{"fedigate; hit"},
		swr:       []string{"fedigate; hit; detail=stale-while-revalidate"},
		maxStale:  []string{"fedigate; hit; detail=max-stale"},
		coalesced: []string{"fedigate; fwd=uri-miss; collapsed"},
		bypass:    []string{"fedigate; fwd=bypass"},
		method:    []string{"fedigate; fwd=method"},
	}
}

// fwd is the Cache-Status "fwd" parameter of a fetch (RFC 9211 §2.2).
type fwd uint8

const (
	fwdURIMiss fwd = iota
	fwdVaryMiss
	fwdStale
)

var fwdNames = [...]string{fwdURIMiss: "uri-miss", fwdVaryMiss: "vary-miss", fwdStale: "stale"}

// missKey names one Cache-Status value of a fetch.
type missKey struct {
	fwd     fwd
	status  int
	stored  bool
	refusal Refusal
}

// maxMissValues bounds the table of built values (statuses are few; a
// backend inventing codes gets its values built each time).
const maxMissValues = 512

// missStatus is the Cache-Status value of a fetch, built once per kind
// and shared (a copy-on-write table: reads take no lock and allocate
// nothing).
func (c *Cache) missStatus(f fwd, status int, stored bool, refusal Refusal) []string {
	k := missKey{f, status, stored, refusal}
	if v, ok := (*c.missValues.Load())[k]; ok {
		return v
	}
	v := "fedigate; fwd=" + fwdNames[f] + "; fwd-status=" + strconv.Itoa(status)
	if stored {
		v += "; stored"
	} else {
		v += "; detail=" + string(refusal)
	}
	val := []string{v}
	c.missMu.Lock()
	defer c.missMu.Unlock()
	old := *c.missValues.Load()
	if len(old) < maxMissValues {
		next := make(map[missKey][]string, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		next[k] = val
		c.missValues.Store(&next)
	}
	return val
}

// tierOf picks the store for an object of size bytes at path; nil = none
// takes it (too large for memory, and no disk tier).
func (c *Cache) tierOf(path string, size int64) Store {
	if c.disk != nil {
		for _, p := range c.cfg.DiskPrefixes {
			if len(path) >= len(p) && path[:len(p)] == p {
				return c.disk
			}
		}
	}
	if size <= c.cfg.MaxObject {
		return c.mem
	}
	if c.disk != nil {
		return c.disk
	}
	return nil
}

// maxStore is the largest body the cache keeps for a path. A body is
// held in memory while it arrives, so even for the disk tier it is bounded
// (a quarter of max_disk, at most 8 max_object: 64 MB by default), and
// concurrent large downloads cannot make the gateway hold max_disk at once.
func (c *Cache) maxStore(path string) int64 {
	if c.tierOf(path, c.cfg.MaxObject+1) != nil {
		return min(c.cfg.MaxDisk/4, 8*c.cfg.MaxObject)
	}
	return c.cfg.MaxObject
}

package ratelimit

import (
	"context"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// A flood of distinct addresses cannot grow the memory store past its
// bound; the stalest clients are evicted first, and idle ones expire.
func TestAttackAddressFloodKeepsMemoryBounded(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	l := mustNew(t, baseConfig(newRule("r", 3, time.Minute, "/x")), Options{Now: clock.Now, MaxKeys: 320})
	tab := l.tables[0]
	var a [16]byte
	a[0], a[1] = 0x20, 0x01
	for i := 0; i < 100_000; i++ {
		a[4], a[5], a[6], a[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		allow(t, l, "r", netip.AddrFrom16(a).String())
	}
	if n := tab.size(); n > 320 {
		t.Fatalf("table tracks %d clients, bound 320", n)
	}
	entries := 0
	for i := range tab.shards {
		entries += len(tab.shards[i].ents)
	}
	if entries > 320 {
		t.Fatalf("%d entries allocated, bound 320", entries)
	}
	if b := l.MemoryBound(); b != 320*(9*3+160) {
		t.Fatalf("MemoryBound = %d", b)
	}
	// Idle clients expire: after a period, each decision sweeps one.
	clock.Advance(time.Minute)
	for i := 0; i < 2000; i++ {
		allow(t, l, "r", "192.0.2.1")
	}
	if n := tab.size(); n != 1 {
		t.Fatalf("after a period of quiet, %d clients tracked, want 1", n)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := newRule("r", 1, time.Minute, "/x")
	cases := map[string]configs.RateLimit{
		"store":          {Store: "disk", OnStoreError: "allow", StoreTimeout: time.Second, IPv6Prefix: 64},
		"on_store_error": {Store: "memory", OnStoreError: "maybe", StoreTimeout: time.Second, IPv6Prefix: 64},
		"store_timeout":  {Store: "memory", OnStoreError: "allow", IPv6Prefix: 64},
		"ipv6_prefix":    {Store: "memory", OnStoreError: "allow", StoreTimeout: time.Second, IPv6Prefix: 129},
		"limit":          baseConfig(newRule("r", 0, time.Minute, "/x")),
		"huge limit":     baseConfig(newRule("r", configs.MaxRuleLimit+1, time.Minute, "/x")),
		"memory budget":  baseConfig(newRule("r", 5000, time.Minute, "/x")),
		"period":         baseConfig(newRule("r", 1, 0, "/x")),
		"paths":          baseConfig(newRule("r", 1, time.Minute)),
		"wildcard":       baseConfig(newRule("r", 1, time.Minute, "/a*b")),
		"relative path":  baseConfig(newRule("r", 1, time.Minute, "auth")),
		"name":           baseConfig(newRule("", 1, time.Minute, "/x")),
		"duplicate":      baseConfig(good, good),
		"redis url":      {Store: "redis", RedisURL: "redis://u:hunter2@h:1?nope=1", OnStoreError: "allow", StoreTimeout: time.Second, IPv6Prefix: 64},
	}
	for name, cfg := range cases {
		l, err := New(cfg, Options{})
		if err == nil || l != nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error echoes the password: %v", name, err)
		}
	}
}

func TestClientKey(t *testing.T) {
	k := newKeyer(64)
	same := [][2]string{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8::1", "2001:db8::ffff:1"},
		{"2001:db8::1%eth0", "2001:db8::2"},
	}
	for _, p := range same {
		a, _ := k.key(netip.MustParseAddr(p[0]))
		b, _ := k.key(netip.MustParseAddr(p[1]))
		if a != b {
			t.Errorf("%s and %s counted apart", p[0], p[1])
		}
	}
	apart := [][2]string{{"192.0.2.1", "192.0.2.2"}, {"2001:db8::1", "2001:db8:0:1::1"}, {"0.0.0.1", "::1"}}
	for _, p := range apart {
		a, _ := k.key(netip.MustParseAddr(p[0]))
		b, _ := k.key(netip.MustParseAddr(p[1]))
		if a == b {
			t.Errorf("%s and %s counted together", p[0], p[1])
		}
	}
	if _, c := k.key(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); k.text(c) != "2001:db8:1:2::/64" {
		t.Errorf("text = %q", k.text(c))
	}
	if got := k.text(netip.Addr{}); got != "invalid" {
		t.Errorf("invalid address text %q", got)
	}
}

// Requests whose client address cannot be parsed are counted together,
// never waved through.
func TestAttackUnparsableClientAddressIsCounted(t *testing.T) {
	l := mustNew(t, baseConfig(newRule("r", 1, time.Minute, "/x")), Options{Now: testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)).Now})
	request(l.Middleware, "GET", "/x", "garbage")
	if _, ran := request(l.Middleware, "GET", "/x", "more garbage"); ran {
		t.Fatal("unparsable client addresses are not limited")
	}
}

// Concurrent decisions for one client admit exactly limit.
func TestMemoryConcurrentExact(t *testing.T) {
	l := mustNew(t, baseConfig(newRule("r", 500, time.Hour, "/x"), newRule("s", 700, time.Hour, "/*")), Options{})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, ran := request(l.Middleware, "GET", "/x", "192.0.2.1"); ran {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 500 {
		t.Fatalf("admitted %d of 1600, want exactly 500", admitted.Load())
	}
}

// The stated bound holds: filling a table to MaxKeys grows the heap by no
// more than MemoryBound.
func TestMemoryBound(t *testing.T) {
	for _, limit := range []int{1, 25, 300} {
		l := mustNew(t, baseConfig(newRule("r", limit, time.Hour, "/x")), Options{MaxKeys: 20000, MaxMemory: 1 << 30})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var a [4]byte
		for i := 0; i < 3*20000; i++ {
			a[0], a[1], a[2], a[3] = 10, byte(i>>16), byte(i>>8), byte(i)
			allow(t, l, "r", netip.AddrFrom4(a).String())
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("limit %d: heap grew %d bytes for %d clients (%d per client); bound %d", limit, grew, l.tables[0].size(), grew/int64(l.tables[0].size()), l.MemoryBound())
		if grew > l.MemoryBound() {
			t.Errorf("limit %d: heap grew %d bytes, over the stated bound %d", limit, grew, l.MemoryBound())
		}
		runtime.KeepAlive(l)
	}
}

// Keys spread over all shards, for consecutive IPv4 addresses and IPv6
// networks alike (an address plan cannot pile clients into one shard).
func TestShardSpread(t *testing.T) {
	tab := newTable(1, 1, time.Minute, 100)
	k := newKeyer(64)
	for _, gen := range []func(i int) netip.Addr{
		func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) },
		func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 1})
		},
	} {
		var counts [nShards]int
		for i := 0; i < 64*nShards; i++ {
			s := tab.shardOf(tab.hash(k.keyOf(gen(i))))
			counts[s.id]++
		}
		for i, c := range counts {
			if c < 20 || c > 120 {
				t.Fatalf("shard %d holds %d of %d keys: %v", i, c, 64*nShards, counts)
			}
		}
	}
}

// Every preset's rules build, within the default memory budget.
func TestPresetsBuild(t *testing.T) {
	for _, p := range configs.Presets {
		def, err := configs.Default(p)
		if err != nil {
			t.Fatal(err)
		}
		l := mustNew(t, def.RateLimit, Options{})
		t.Logf("%s: %d rules, memory bound %.1f MiB", p, len(l.rules), float64(l.MemoryBound())/(1<<20))
	}
}

// A memory decision allocates nothing, for IPv4, IPv4-mapped and IPv6
// clients alike (keyOf's AsSlice must stay on the stack).
func TestMemoryDecisionAllocatesNothing(t *testing.T) {
	l := mustNew(t, baseConfig(newRule("r", 1000, time.Minute, "/x")), Options{})
	for _, c := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1"} {
		a := netip.MustParseAddr(c)
		if n := testing.AllocsPerRun(100, func() { _, _ = l.Allow(context.Background(), "r", a) }); n != 0 {
			t.Errorf("%s: %v allocations per decision", c, n)
		}
	}
}

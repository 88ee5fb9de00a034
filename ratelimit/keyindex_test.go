package ratelimit

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// testShard is shard 0 of a fresh table with a fixed seed, holding at
// most perShard clients; every key goes to this shard, whatever its hash.
func testShard(perShard int, seed [2]uint64) (*table, *shard) {
	tab := newTable(1, 1, time.Minute, perShard)
	tab.seed = seed
	return tab, &tab.shards[0]
}

// keysWithHomes returns a key for each wanted home slot in an index of n
// slots (keys numbered from first up, so calls can ask for distinct keys).
func keysWithHomes(tab *table, n int, first uint64, homes ...int) []clientKey {
	x := keyIndex{slots: make([]int32, n)}
	x.shift = uint8(64 - bitLen(n))
	out := make([]clientKey, len(homes))
	for j, want := range homes {
		for k := first; ; k++ {
			ck := clientKey{front: 0x20010db8 + k<<32}
			if x.home(tab.hash(ck)) == want {
				out[j], first = ck, k+1
				break
			}
		}
	}
	return out
}

func bitLen(n int) int {
	b := 0
	for ; n > 1; n >>= 1 {
		b++
	}
	return b
}

// checkShard checks s against the model: lru lists the keys s should
// hold, most recently used first. Every key is found, from its home slot
// without crossing an empty slot; absent is not found; the index holds
// each entry once and is at most half full.
func checkShard(t *testing.T, tab *table, s *shard, lru []clientKey, absent ...clientKey) {
	t.Helper()
	var got []clientKey
	for i := s.head; i >= 0; i = s.ents[i].next {
		got = append(got, s.ents[i].key)
	}
	if !slices.Equal(got, lru) {
		t.Fatalf("LRU list %x, want %x", got, lru)
	}
	x := &s.index
	if x.keys != len(lru) || len(s.ents)-len(s.free) != len(lru) {
		t.Fatalf("index counts %d keys, %d entries in use, want %d", x.keys, len(s.ents)-len(s.free), len(lru))
	}
	if len(lru) > 0 && 2*x.keys > len(x.slots) {
		t.Fatalf("%d keys in %d slots: more than half full", x.keys, len(x.slots))
	}
	if max(len(x.slots), 4) > 4*tab.perShard {
		t.Fatalf("%d slots for a bound of %d keys", len(x.slots), tab.perShard)
	}
	seen := map[int32]bool{}
	for p, v := range x.slots {
		if v == 0 {
			continue
		}
		if seen[v] {
			t.Fatalf("entry %d indexed twice", v-1)
		}
		seen[v] = true
		for q := x.home(tab.hash(s.ents[v-1].key)); q != p; q = (q + 1) % len(x.slots) {
			if x.slots[q] == 0 {
				t.Fatalf("slot %d (key %x) is past an empty slot %d on its probe path", p, s.ents[v-1].key, q)
			}
		}
	}
	for _, k := range lru {
		if i := s.find(tab.hash(k), k); i < 0 || s.ents[i].key != k {
			t.Fatalf("key %x not found", k)
		}
	}
	for _, k := range absent {
		if i := s.find(tab.hash(k), k); i >= 0 {
			t.Fatalf("removed key %x found at entry %d", k, i)
		}
	}
}

func removeKey(tab *table, s *shard, k clientKey) {
	s.remove(tab, s.find(tab.hash(k), k))
}

// Keys that share a home slot probe on; deleting one shifts the rest of
// its run back, across the end of the array too, so all stay reachable.
func TestKeyIndexCollisionsAndBackwardShift(t *testing.T) {
	tab, s := testShard(6, [2]uint64{1, 2}) // 6 keys: 16 slots
	k := keysWithHomes(tab, 16, 0, 3, 3, 4, 3, 15, 15)
	for _, c := range k {
		s.get(tab, tab.hash(c), c)
	}
	// The last growth (at k4) placed k3, k2, k1, k0 in LRU order.
	wantSlots(t, s, k, map[int]int{3: 3, 4: 2, 5: 1, 6: 0, 15: 4, 0: 5})
	checkShard(t, tab, s, []clientKey{k[5], k[4], k[3], k[2], k[1], k[0]})
	// k2 stays at its home; k1 and k0 move back one each.
	removeKey(tab, s, k[3])
	wantSlots(t, s, k, map[int]int{3: 1, 4: 2, 5: 0, 15: 4, 0: 5})
	checkShard(t, tab, s, []clientKey{k[5], k[4], k[2], k[1], k[0]}, k[3])
	// k5 moves back across the end of the array.
	removeKey(tab, s, k[4])
	wantSlots(t, s, k, map[int]int{3: 1, 4: 2, 5: 0, 15: 5})
	checkShard(t, tab, s, []clientKey{k[5], k[2], k[1], k[0]}, k[3], k[4])
	removeKey(tab, s, k[1])
	wantSlots(t, s, k, map[int]int{3: 0, 4: 2, 15: 5})
	// Freed entries are reused, and their keys indexed anew.
	s.get(tab, tab.hash(k[4]), k[4])
	wantSlots(t, s, k, map[int]int{3: 0, 4: 2, 15: 5, 0: 4})
	checkShard(t, tab, s, []clientKey{k[4], k[5], k[2], k[0]}, k[1], k[3])
	if len(s.ents) != 6 {
		t.Fatalf("%d entries allocated for at most 6 keys", len(s.ents))
	}
}

// wantSlots checks which of keys each slot of s's index holds (slot:
// index in keys); the other slots must be empty.
func wantSlots(t *testing.T, s *shard, keys []clientKey, want map[int]int) {
	t.Helper()
	for p, v := range s.index.slots {
		j, ok := want[p]
		switch {
		case !ok && v != 0:
			t.Fatalf("slot %d holds %x, want empty", p, s.ents[v-1].key)
		case ok && (v == 0 || s.ents[v-1].key != keys[j]):
			t.Fatalf("slot %d does not hold key %d: %v", p, j, s.index.slots)
		}
	}
}

// A full shard evicts its least recently used key, from the index too;
// the index never grows past its bound.
func TestKeyIndexFullShardEvicts(t *testing.T) {
	tab, s := testShard(4, [2]uint64{3, 4})
	k := keysWithHomes(tab, 8, 0, 1, 1, 1, 2, 1, 1)
	for _, c := range k[:4] {
		s.get(tab, tab.hash(c), c)
	}
	s.get(tab, tab.hash(k[0]), k[0]) // k1 is now the stalest
	checkShard(t, tab, s, []clientKey{k[0], k[3], k[2], k[1]})
	s.get(tab, tab.hash(k[4]), k[4])
	checkShard(t, tab, s, []clientKey{k[4], k[0], k[3], k[2]}, k[1])
	s.get(tab, tab.hash(k[5]), k[5])
	checkShard(t, tab, s, []clientKey{k[5], k[4], k[0], k[3]}, k[1], k[2])
	if len(s.index.slots) != 8 || len(s.ents) != 4 {
		t.Fatalf("%d slots, %d entries for a bound of 4 keys", len(s.index.slots), len(s.ents))
	}
}

// FuzzKeyIndex: a shard under any sequence of lookups and removals holds
// what a Go map with an LRU list would, and its index stays well formed.
func FuzzKeyIndex(f *testing.F) {
	f.Add(uint8(5), uint64(1), []byte{1, 2, 3, 4, 5, 6, 7, 0x81, 0x83, 9, 10, 11, 0x8a, 1})
	f.Add(uint8(1), uint64(7), []byte{1, 2, 0x82, 0x81, 3})
	f.Add(uint8(40), uint64(9), []byte("the quick brown fox jumps over the lazy dog, again and again and again"))
	f.Fuzz(func(t *testing.T, perShard uint8, seed uint64, ops []byte) {
		tab, s := testShard(int(perShard%48)+1, [2]uint64{seed, seed * 31})
		var lru []clientKey
		for _, op := range ops {
			// up to 64 keys, close together as addresses are
			k := clientKey{front: 0x20010db8 | uint64(op&0x3f)<<40}
			at := slices.Index(lru, k)
			if op&0x80 != 0 { // remove, if present
				if at >= 0 {
					removeKey(tab, s, k)
					lru = slices.Delete(lru, at, at+1)
				}
			} else {
				s.get(tab, tab.hash(k), k)
				switch {
				case at >= 0:
					lru = slices.Delete(lru, at, at+1)
				case len(lru) == tab.perShard:
					lru = lru[:len(lru)-1]
				}
				lru = slices.Insert(lru, 0, k)
			}
			var absent []clientKey
			for b := range 64 {
				if c := (clientKey{front: 0x20010db8 | uint64(b)<<40}); !slices.Contains(lru, c) {
					absent = append(absent, c)
				}
			}
			checkShard(t, tab, s, lru, absent...)
		}
	})
}

// Address plans spread over a full table's slots as over random ones:
// probes stay short (this fails if the slot came from the hash's low bits,
// which do not depend on an IPv4 address).
func TestKeyIndexSpread(t *testing.T) {
	k := newKeyer(64)
	for name, gen := range map[string]func(i int) netip.Addr{
		"IPv4 in turn": func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) },
		"IPv4 by /24":  func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 7}) },
		"IPv6 /64s": func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i >> 16), byte(i >> 8), byte(i), 15: 1})
		},
		"IPv6 /32s": func(i int) netip.Addr { return netip.AddrFrom16([16]byte{0x20, 0x01, byte(i >> 8), byte(i), 15: 1}) },
		"IPv4-mapped /24": func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: byte(i >> 8), 15: byte(i)})
		},
	} {
		tab := newTable(1, 1, time.Minute, 313) // 10016 keys, 1024 slots a shard
		for i := 0; i < 4*313*nShards; i++ {
			ck := k.keyOf(gen(i))
			h := tab.hash(ck)
			tab.shardOf(h).get(tab, h, ck)
		}
		probes, keys, longest := 0, 0, 0
		for j := range tab.shards {
			x := &tab.shards[j].index
			for p, v := range x.slots {
				if v != 0 {
					n := (p-x.home(tab.hash(tab.shards[j].ents[v-1].key)))&(len(x.slots)-1) + 1
					probes, keys, longest = probes+n, keys+1, max(longest, n)
				}
			}
		}
		mean := float64(probes) / float64(keys)
		t.Logf("%s: %d keys, %.2f probes on average, %d at most", name, keys, mean, longest)
		if mean > 2 || longest > 40 {
			t.Errorf("%s: %.2f probes on average, %d at most", name, mean, longest)
		}
	}
}

package ratelimit

import "math/bits"

// keyIndex is a shard's index from client key to entry: open addressing
// with linear probing over a power-of-two array of slots, at most half
// full. A key's home slot is taken from the bits of the table's keyed hash
// just below those that picked the shard, so a decision hashes its key
// once, and keys spread over the slots as evenly, and as unpredictably to
// an attacker, as over the shards. Deleting a key shifts the keys after
// it in its run back (no tombstones), so runs stay as short under churn
// as after inserts alone.
//
// The array doubles as keys arrive, up to the first power of two that
// holds the shard's bound at half load: at most 4 slots of 4 bytes per
// key the shard may track.
type keyIndex struct {
	slots []int32 // entry index + 1 of a key; 0 = empty
	shift uint8   // 64 - log2(len(slots))
	keys  int     // non-empty slots
}

// home is the slot where the probe for a key of hash h starts.
func (x *keyIndex) home(h uint64) int { return int(h << shardBits >> x.shift) }

// find returns the index in s.ents of the entry of k (of hash h), or -1.
func (s *shard) find(h uint64, k clientKey) int32 {
	x := &s.index
	if x.keys == 0 {
		return -1
	}
	mask := len(x.slots) - 1
	for p := x.home(h); ; p = (p + 1) & mask {
		v := x.slots[p]
		if v == 0 {
			return -1
		}
		if s.ents[v-1].key == k {
			return v - 1
		}
	}
}

// insert indexes entry i, whose key (of hash h) the index does not hold,
// doubling the array first if it would be more than half full.
func (s *shard) insert(t *table, h uint64, i int32) {
	x := &s.index
	if 2*(x.keys+1) > len(x.slots) {
		s.growIndex(t)
	}
	x.place(h, i)
	x.keys++
}

// place puts entry i in the first empty slot from its home on.
func (x *keyIndex) place(h uint64, i int32) {
	mask := len(x.slots) - 1
	p := x.home(h)
	for x.slots[p] != 0 {
		p = (p + 1) & mask
	}
	x.slots[p] = i + 1
}

// growIndex doubles the array (to 4 slots at first) and places the keys
// anew: the entries on the LRU list are exactly the indexed ones.
func (s *shard) growIndex(t *table) {
	x := &s.index
	n := max(2*len(x.slots), 4)
	x.slots = make([]int32, n)
	x.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	for i := s.head; i >= 0; i = s.ents[i].next {
		x.place(t.hash(s.ents[i].key), i)
	}
}

// unindex drops entry i's key from the index, and moves back each key
// after it in the run whose probe path passes the emptied slot, so that
// every key stays reachable from its home without crossing an empty slot.
func (s *shard) unindex(t *table, i int32) {
	x := &s.index
	mask := len(x.slots) - 1
	p := x.home(t.hash(s.ents[i].key))
	for x.slots[p] != i+1 {
		p = (p + 1) & mask
	}
	for q := (p + 1) & mask; x.slots[q] != 0; q = (q + 1) & mask {
		home := x.home(t.hash(s.ents[x.slots[q]-1].key))
		if (q-home)&mask >= (q-p)&mask { // p lies on q's probe path
			x.slots[p] = x.slots[q]
			p = q
		}
	}
	x.slots[p] = 0
	x.keys--
}

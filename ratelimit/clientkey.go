package ratelimit

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// clientKey is the counted identity of a client: an IPv4 address, or an
// IPv6 address masked to the configured prefix, in the 16-byte form (IPv4
// in its IPv4-mapped form) read as two little-endian words, which on the
// usual machines are plain loads. An address that is not valid maps to
// the zero key, so such requests are counted together rather than not at
// all.
type clientKey struct {
	front, back uint64 // bytes 0-7 and 8-15
}

// mappedBack is the back word of an IPv4-mapped address whose IPv4 part is
// zero: bytes 10 and 11 are 0xff.
const mappedBack = 0xffff_0000

// as16 is k's 16-byte form.
func (k clientKey) as16() [16]byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], k.front)
	binary.LittleEndian.PutUint64(b[8:], k.back)
	return b
}

// keyer derives client keys.
type keyer struct {
	v6bits      int
	front, back uint64 // the mask of v6bits leading ones, in clientKey's order
}

func newKeyer(v6bits int) keyer {
	n := max(min(v6bits, 128), 0)
	var hi, lo uint64 // n leading ones over 128 bits, big-endian
	if n >= 64 {
		hi = ^uint64(0)
		lo = ^uint64(0) << (128 - n) // a shift of 64 gives 0
	} else {
		hi = ^uint64(0) << (64 - n)
	}
	return keyer{v6bits: v6bits, front: bits.ReverseBytes64(hi), back: bits.ReverseBytes64(lo)}
}

// key returns the key of a and the address it counts as (a unmapped and
// masked). IPv4-mapped IPv6 addresses are counted as the IPv4 address.
func (k keyer) key(a netip.Addr) (clientKey, netip.Addr) {
	ck := k.keyOf(a)
	switch {
	case !a.IsValid():
		return ck, netip.Addr{}
	case a.Unmap().Is4():
		return ck, a.Unmap()
	default:
		return ck, netip.AddrFrom16(ck.as16())
	}
}

// keyOf is the key alone: a's 16-byte form (IPv4 mapped), masked to the
// IPv6 prefix unless a is IPv4 or IPv4-mapped.
func (k keyer) keyOf(a netip.Addr) clientKey {
	// The words are loaded from AsSlice's bytes where it stored them. As16
	// would be copied first (it returns an array), in one 16-byte load
	// just after its two 8-byte stores: a load that cannot take its data
	// from the stores, which stalls the CPU.
	b := a.AsSlice()
	switch len(b) {
	case 4:
		return clientKey{0, mappedBack | uint64(binary.LittleEndian.Uint32(b))<<32}
	case 16:
		ck := clientKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
		if ck.front == 0 && uint32(ck.back) == mappedBack { // IPv4-mapped
			return ck
		}
		return clientKey{ck.front & k.front, ck.back & k.back}
	}
	return clientKey{} // no address
}

// text is the key as Redis and the log know it: "192.0.2.1", or
// "2001:db8:1:2::/64" for an IPv6 network, or "invalid".
func (k keyer) text(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "invalid"
	case a.Is4():
		return a.String()
	default:
		return netip.PrefixFrom(a, k.v6bits).String()
	}
}

// Keyer names clients as the rules count them, for the other parts of
// fedigate that bound something per client (the edge's open streams), so
// that "one client" means the same everywhere.
type Keyer struct{ k keyer }

// ClientKey is one client as a Keyer counts it; comparable, a map key.
type ClientKey struct{ k clientKey }

// NewKeyer counts IPv6 clients per network of ipv6Prefix bits
// (ratelimit.ipv6_prefix), IPv4 clients per address.
func NewKeyer(ipv6Prefix int) Keyer { return Keyer{newKeyer(ipv6Prefix)} }

// Key is a's key: IPv4-mapped addresses count as the IPv4 address.
func (k Keyer) Key(a netip.Addr) ClientKey { return ClientKey{k.k.keyOf(a)} }

// Text is a as the log names it: "192.0.2.1" or "2001:db8:1:2::/64".
func (k Keyer) Text(a netip.Addr) string {
	_, counted := k.k.key(a)
	return k.k.text(counted)
}

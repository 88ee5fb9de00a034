package ratelimit

import (
	"encoding/binary"
	"net/netip"
)

// clientKey is the counted identity of a client: an IPv4 address, or an
// IPv6 address masked to the configured prefix, as 16 bytes (IPv4 in its
// IPv4-mapped form). An address that is not valid maps to the zero key,
// so such requests are counted together rather than not at all.
type clientKey [16]byte

// keyer derives client keys.
type keyer struct {
	v6bits         int
	maskHi, maskLo uint64 // v6bits leading ones over 128 bits
}

func newKeyer(v6bits int) keyer {
	bits := max(min(v6bits, 128), 0)
	k := keyer{v6bits: v6bits}
	if bits >= 64 {
		k.maskHi = ^uint64(0)
		k.maskLo = ^uint64(0) << (128 - bits) // a shift of 64 gives 0
	} else {
		k.maskHi = ^uint64(0) << (64 - bits)
	}
	return k
}

// key returns the key of a and the address it counts as (a unmapped and
// masked). IPv4-mapped IPv6 addresses are counted as the IPv4 address.
func (k keyer) key(a netip.Addr) (clientKey, netip.Addr) {
	ck := k.bytes(a)
	switch {
	case !a.IsValid():
		return ck, netip.Addr{}
	case a.Unmap().Is4():
		return ck, a.Unmap()
	default:
		return ck, netip.AddrFrom16(ck)
	}
}

// bytes is the key alone: a's 16-byte form (IPv4 mapped), masked to the
// IPv6 prefix unless a is IPv4 or IPv4-mapped.
func (k keyer) bytes(a netip.Addr) clientKey {
	if !a.IsValid() {
		return clientKey{}
	}
	b := a.As16()
	if a.Is4() || a.Is4In6() {
		return b
	}
	lo, hi := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	lo &= k.maskHi
	hi &= k.maskLo
	binary.BigEndian.PutUint64(b[:8], lo)
	binary.BigEndian.PutUint64(b[8:], hi)
	return b
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

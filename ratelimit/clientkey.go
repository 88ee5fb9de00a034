package ratelimit

import (
	"net/netip"
)

// clientKey is the counted identity of a client: an IPv4 address, or an
// IPv6 address masked to the configured prefix, as 16 bytes (IPv4 in its
// IPv4-mapped form). An address that is not valid maps to the zero key,
// so such requests are counted together rather than not at all.
type clientKey [16]byte

// keyer derives client keys.
type keyer struct {
	v6bits int
	mask   [16]byte // v6bits leading ones
}

func newKeyer(v6bits int) keyer {
	k := keyer{v6bits: v6bits}
	for i := 0; i < min(v6bits, 128); i++ {
		k.mask[i/8] |= 0x80 >> (i % 8)
	}
	return k
}

// key returns the key of a and the address it counts as (a unmapped and
// masked). IPv4-mapped IPv6 addresses are counted as the IPv4 address.
func (k keyer) key(a netip.Addr) (clientKey, netip.Addr) {
	if !a.IsValid() {
		return clientKey{}, netip.Addr{}
	}
	a = a.Unmap()
	if a.Is4() {
		return clientKey(a.As16()), a
	}
	b := a.As16()
	for i := range b {
		b[i] &= k.mask[i]
	}
	return clientKey(b), netip.AddrFrom16(b)
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

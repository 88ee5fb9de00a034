package configs

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// parsePrefix accepts a CIDR ("10.0.0.0/8", "2001:db8::/32") or a bare
// address (one host). IPv4-mapped IPv6 is unmapped; host bits must be zero.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR like \"10.0.0.0/8\"", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR like \"10.0.0.0/8\" or \"2001:db8::/32\"", s)
	}
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %q?", s, p.Masked().String())
	}
	return p, nil
}

// parseSize reads a byte size: a whole number of bytes, or a string with
// a unit: "512", "64KB", "99MB", "1GB" (binary: KB = 1024 bytes).
func parseSize(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, fmt.Errorf("size %d is negative", x)
		}
		return x, nil
	case string:
		s := strings.ToUpper(strings.TrimSpace(x))
		mult := int64(1)
		for _, u := range []struct {
			suffix string
			mult   int64
		}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
			if strings.HasSuffix(s, u.suffix) {
				s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
				break
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%q is not a size: write it like \"512KB\", \"99MB\" or \"1GB\"", x)
		}
		return n * mult, nil
	default:
		return 0, fmt.Errorf("want a size like \"99MB\"; got %s", tomlKind(v))
	}
}

package egress

import (
	"net/netip"
)

// deniedRanges are the destinations deny_private refuses, each with the
// reason a refusal names. IPv4-mapped addresses are unmapped before this
// table is read; NAT64 and 6to4 addresses are checked again by the IPv4
// address they carry.
var deniedRanges = func() []struct {
	p   netip.Prefix
	why string
} {
	rows := []struct{ cidr, why string }{
		{"0.0.0.0/8", "this network"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "carrier-grade NAT"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (cloud metadata lives here)"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation"},
		{"192.88.99.0/24", "6to4 relay"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible (deprecated)"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard"},
		{"2001::/32", "Teredo tunnel"},
		{"2001:2::/48", "benchmarking"},
		{"2001:db8::/32", "documentation"},
		{"3fff::/20", "documentation"},
		{"fc00::/7", "unique local (cloud metadata fd00:ec2::254 lives here)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local (deprecated)"},
		{"ff00::/8", "multicast"},
	}
	out := make([]struct {
		p   netip.Prefix
		why string
	}, len(rows))
	for i, r := range rows {
		out[i].p, out[i].why = netip.MustParsePrefix(r.cidr), r.why
	}
	return out
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// privateReason says why a is not a public destination, or "" when it is.
func privateReason(a netip.Addr) string {
	a = a.Unmap()
	if !a.IsValid() {
		return "invalid"
	}
	if a.Zone() != "" {
		return "zoned"
	}
	for _, r := range deniedRanges {
		if r.p.Contains(a) {
			return r.why
		}
	}
	if a.Is6() {
		b := a.As16()
		var embedded netip.Addr
		switch {
		case nat64.Contains(a):
			embedded = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(a):
			embedded = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if embedded.IsValid() {
			if why := privateReason(embedded); why != "" {
				return why + ", embedded in " + a.String()
			}
		}
	}
	return ""
}

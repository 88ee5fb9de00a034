package egress

import (
	"context"
	"net/netip"
	"testing"
)

// FuzzRequestTarget: any CONNECT authority or Host is either refused or
// turned into a target that is public (or a name handed to the upstream,
// which then was not a literal address). Never a panic.
func FuzzRequestTarget(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::ffff:127.0.0.1]:80", "127.0.0.1:0", "[fe80::1%eth0]:80",
		"a..b:1", "x.onion:80", ":80", "host:", "[64:ff9b::a00:1]:443", "1.1.1.1:65536", "EXAMPLE.com.:443"} {
		f.Add(s)
	}
	g := newGuard(egressConfig("direct"), []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8443")}, nil)
	f.Fuzz(func(t *testing.T, s string) {
		tgt, err := g.check(context.Background(), s)
		if err != nil {
			if _, ok := err.(*Refusal); !ok {
				t.Fatalf("%q: error is not a *Refusal: %v", s, err)
			}
			return
		}
		if tgt.addr.IsValid() {
			if why := privateReason(tgt.addr.Addr()); why != "" {
				t.Fatalf("%q admitted to %v (%s)", s, tgt.addr, why)
			}
			return
		}
		if _, err := netip.ParseAddr(tgt.name); err == nil || tgt.name == "" {
			t.Fatalf("%q admitted as name %q", s, tgt.name)
		}
	})
}

// FuzzClassify: the classifier agrees with the standard library's own
// predicates wherever they apply, on every 16-byte address.
func FuzzClassify(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Add(netip.MustParseAddr("::ffff:10.0.0.1").AsSlice())
	f.Add(netip.MustParseAddr("64:ff9b::7f00:1").AsSlice())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		u := a.Unmap()
		std := u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast() || u.IsLinkLocalMulticast() ||
			u.IsMulticast() || u.IsUnspecified() || u.IsInterfaceLocalMulticast()
		if std && privateReason(a) == "" {
			t.Fatalf("%v: the standard library says not public, the guard admits it", a)
		}
	})
}

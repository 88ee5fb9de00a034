package proxy

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestParseClientIP(t *testing.T) {
	rows := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{" 192.0.2.1 ", "192.0.2.1"},
		{"192.0.2.1:8080", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"::ffff:192.0.2.9", "192.0.2.9"},
		{"fe80::1%eth0", "fe80::1"},
		{"", ""},
		{"0.0.0.0", ""},
		{"::", ""},
		{"unknown", ""},
		{"192.0.2.256", ""},
		{"[2001:db8::1", ""},
		{"1.2.3.4, 5.6.7.8", ""},
	}
	for _, row := range rows {
		a, ok := parseClientIP(row.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != row.want {
			t.Errorf("parseClientIP(%q) = %q, want %q", row.in, got, row.want)
		}
	}
}

func TestIsForwardingHeader(t *testing.T) {
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-Ip", "Client-Ip", "Cf-Connecting-Ip", "Cf-Ray", "True-Client-Ip"} {
		if !isForwardingHeader(k) {
			t.Errorf("%s not dropped", k)
		}
	}
	for _, k := range []string{"Accept", "Cfoo", "X-Forwarded", "Authorization", "Cookie"} {
		if isForwardingHeader(k) {
			t.Errorf("%s dropped", k)
		}
	}
}

// FuzzClientAddr: the decision never panics and is always the peer or a
// valid, unmapped, zone-less address named by a trusted peer's header.
func FuzzClientAddr(f *testing.F) {
	f.Add("127.0.0.1:5000", "203.0.113.1", "198.51.100.1, 127.0.0.1")
	f.Add("[::1]:5000", "", "2001:db8::1, ::1")
	f.Add("10.0.0.1:1", "garbage", "")
	f.Add("127.0.0.1:1", "", " , ,1.2.3.4,")
	f.Add("127.0.0.1:1", "[fe80::1%25eth0]:80", "::ffff:10.0.0.1")
	f.Add("not an addr", "1.1.1.1", "1.1.1.1")
	tr := newTrust([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8")},
		[]string{"CF-Connecting-IP", "X-Forwarded-For"})
	f.Fuzz(func(t *testing.T, remote, cf, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if cf != "" {
			r.Header["Cf-Connecting-Ip"] = []string{cf}
		}
		if xff != "" {
			r.Header["X-Forwarded-For"] = []string{xff}
		}
		peer := peerAddr(r)
		got := tr.decide(peer, r.Header)
		if got == peer {
			return
		}
		if !peer.IsValid() || !tr.trusted(peer) {
			t.Fatalf("untrusted peer %v yielded %v", peer, got)
		}
		if !got.IsValid() || got.Is4In6() || got.Zone() != "" || got.IsUnspecified() {
			t.Fatalf("decided invalid client %v from %q / %q", got, cf, xff)
		}
	})
}

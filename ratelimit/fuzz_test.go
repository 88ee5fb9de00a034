package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/backendroute"
)

// FuzzRuleMatch: no path or method panics the matcher; normalisation is
// idempotent and yields a normal path; a path and the spellings a backend
// routes alike (trailing slash, doubled slashes, upper case) match the
// same rules.
func FuzzRuleMatch(f *testing.F) {
	for _, s := range []string{"/auth", "/auth/", "//auth", "/AUTH", "/x/../auth", "/auth.json", "/authx", "/api/v1/accounts", "/media_proxy/1", "", "auth", "/./", "/..", "/%2e%2e/auth", "/auth\x00", "/é/auth"} {
		f.Add(s, "POST")
	}
	rules := []configs.Rule{
		{Name: "sign-up", Methods: []string{"POST"}, Paths: []string{"/auth", "/auth.*"}, Limit: 1, Period: time.Minute},
		{Name: "api", Paths: []string{"/api/*"}, Limit: 1, Period: time.Minute},
		{Name: "media", Paths: []string{"/media_proxy*"}, Limit: 1, Period: time.Minute},
	}
	var compiled []rule
	for _, r := range rules {
		c, err := compileRule(r)
		if err != nil {
			f.Fatal(err)
		}
		compiled = append(compiled, c)
	}
	f.Fuzz(func(t *testing.T, p, method string) {
		n := backendroute.Canonical(p)
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "/.") {
			return
		}
		variants := []string{p + "/", "/" + p, asciiUpper(p), strings.ReplaceAll(p, "/", "//")}
		for i := range compiled {
			want := compiled[i].matchRequest(method, n)
			for _, v := range variants {
				if got := compiled[i].matchRequest(method, backendroute.Canonical(v)); got != want {
					t.Fatalf("rule %s: %q matches %v, its spelling %q matches %v", compiled[i].name, p, want, v, got)
				}
			}
		}
		r, err := http.NewRequest(http.MethodGet, "http://h/", nil)
		if err == nil {
			r.Method, r.URL.Path = method, p
			var m [maxMatch]int
			(&Limiter{rules: compiled}).match(r, &m)
		}
	})
}

// FuzzClientKey: any 16 bytes and prefix give a key without panicking;
// the key is the address's 16-byte form, masked to the prefix unless it is
// IPv4 or IPv4-mapped, and the zero key for no address; the IPv4-mapped
// form of an address counts as the address, and two addresses share a key
// exactly when they share the counted prefix.
func FuzzClientKey(f *testing.F) {
	f.Add([]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9}, uint8(64))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1}, []byte{192, 0, 2, 1}, uint8(64))
	f.Add([]byte{1}, []byte{}, uint8(200))
	f.Fuzz(func(t *testing.T, a, b []byte, bits uint8) {
		k := newKeyer(int(bits%128) + 1)
		x, okx := netip.AddrFromSlice(a)
		y, oky := netip.AddrFromSlice(b)
		kx, cx := k.key(x)
		ky, cy := k.key(y)
		_ = k.text(cx)
		if !okx && kx != (clientKey{}) {
			t.Fatalf("no address: key %x, want zeros", kx.as16())
		}
		if !okx || !oky {
			return
		}
		xu, yu := x.Unmap(), y.Unmap()
		want := xu // the 16-byte form of what x counts as
		if !xu.Is4() {
			p, _ := xu.Prefix(k.v6bits)
			want = p.Addr()
		}
		if kx.as16() != want.As16() {
			t.Fatalf("%v (/%d): key %x, want %x", x, k.v6bits, kx.as16(), want.As16())
		}
		var same bool
		switch {
		case xu.Is4() != yu.Is4():
			same = false
		case xu.Is4():
			same = xu == yu
		default:
			px, _ := xu.Prefix(k.v6bits)
			py, _ := yu.Prefix(k.v6bits)
			same = px == py
		}
		if (kx == ky) != same {
			t.Fatalf("%v and %v (/%d): same key %v, want %v (%v %v)", x, y, k.v6bits, kx == ky, same, cx, cy)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

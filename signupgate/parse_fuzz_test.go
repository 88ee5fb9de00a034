package signupgate

import (
	"net/netip"
	"testing"
	"time"
)

var fuzzKey = []byte("fuzz key fuzz key fuzz key fuzz!")

// fuzzSeeds are a valid token of kind, its truncations and mutations.
func fuzzSeeds(f *testing.F, kind byte) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := newToken(kind, 18, netip.MustParseAddr("2001:db8::1"), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	s := tok.sign(fuzzKey)
	for _, seed := range []string{s, s[:len(s)-1], s + "A", "", "====", s[:encodedLen/2]} {
		f.Add(seed, "2001:db8::5")
	}
	f.Add(s, "192.0.2.1")
}

// fuzzParse: parseToken never panics, and whatever it accepts is exactly
// what signing the parsed token gives back (no second spelling of a token).
func fuzzParse(t *testing.T, s, client string, kind byte) {
	a, err := netip.ParseAddr(client)
	if err != nil {
		a = netip.MustParseAddr("2001:db8::5")
	}
	tok, err := parseToken(s, fuzzKey, kind, a, time.Unix(1_800_000_000, 0))
	if err != nil {
		return
	}
	if tok.kind != kind || tok.sign(fuzzKey) != s {
		t.Fatalf("accepted %q, which re-signs as %q", s, tok.sign(fuzzKey))
	}
}

func FuzzParsePass(f *testing.F) {
	fuzzSeeds(f, kindPass)
	f.Fuzz(func(t *testing.T, s, client string) { fuzzParse(t, s, client, kindPass) })
}

func FuzzParseChallenge(f *testing.F) {
	fuzzSeeds(f, kindChallenge)
	f.Fuzz(func(t *testing.T, s, client string) {
		fuzzParse(t, s, client, kindChallenge)
		// the nonce check of a solution never panics either
		if validNonce(client) {
			_ = leadingZeroBits(s, client)
		}
	})
}

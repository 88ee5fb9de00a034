package signupgate

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// Token kinds: a challenge (what a browser must solve) and a pass (what a
// solved challenge earns). The kind is signed, so one is never the other.
const (
	kindChallenge byte = 'c'
	kindPass      byte = 'p'
	tokenVersion  byte = 1
)

// token layout before signing (40 bytes):
// version(1) kind(1) difficulty(1) reserved(1) expires unix(8) client(16) id(12)
const (
	tokenBody = 40
	tokenMAC  = 32
	tokenLen  = tokenBody + tokenMAC
	// encodedLen is the base64url length of a token.
	encodedLen = (tokenLen*8 + 5) / 6
)

// Refusal reasons: the fixed values of the log field "reason" and the
// metric label.
var (
	errMalformed = errors.New("malformed")
	errForged    = errors.New("forged")
	errExpired   = errors.New("expired")
	errMoved     = errors.New("other_client")
	errKind      = errors.New("wrong_kind")
)

// token is a signed, expiring statement bound to one client.
type token struct {
	kind       byte
	difficulty uint8
	expires    time.Time
	client     [16]byte
	id         [12]byte
}

// clientKey binds to an IPv4 address, or to the /64 of an IPv6 one.
func clientKey(a netip.Addr) [16]byte {
	a = a.Unmap()
	if a.Is4() {
		var k [16]byte
		b := a.As4()
		copy(k[12:], b[:])
		k[10], k[11] = 0xff, 0xff
		return k
	}
	p, _ := a.Prefix(64)
	return p.Addr().As16()
}

func newToken(kind byte, difficulty uint8, client netip.Addr, expires time.Time) (token, error) {
	t := token{kind: kind, difficulty: difficulty, expires: expires, client: clientKey(client)}
	if _, err := rand.Read(t.id[:]); err != nil {
		return token{}, err
	}
	return t, nil
}

// sign encodes t as base64url(body || HMAC-SHA256(key, body)).
func (t token) sign(key []byte) string {
	var b [tokenLen]byte
	b[0], b[1], b[2] = tokenVersion, t.kind, t.difficulty
	binary.BigEndian.PutUint64(b[4:12], uint64(t.expires.Unix()))
	copy(b[12:28], t.client[:])
	copy(b[28:40], t.id[:])
	m := hmac.New(sha256.New, key)
	m.Write(b[:tokenBody])
	m.Sum(b[:tokenBody])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parseToken checks the signature, kind, expiry and client of s. Any
// failure is a refusal; nothing but a fully valid token returns nil.
func parseToken(s string, key []byte, kind byte, client netip.Addr, now time.Time) (token, error) {
	if len(s) != encodedLen {
		return token{}, errMalformed
	}
	var b [tokenLen]byte
	n, err := base64.RawURLEncoding.Decode(b[:], []byte(s))
	if err != nil || n != tokenLen {
		return token{}, errMalformed
	}
	m := hmac.New(sha256.New, key)
	m.Write(b[:tokenBody])
	if !hmac.Equal(m.Sum(nil), b[tokenBody:]) {
		return token{}, errForged
	}
	if b[0] != tokenVersion || b[3] != 0 {
		return token{}, errMalformed
	}
	t := token{kind: b[1], difficulty: b[2], expires: time.Unix(int64(binary.BigEndian.Uint64(b[4:12])), 0)}
	copy(t.client[:], b[12:28])
	copy(t.id[:], b[28:40])
	if t.kind != kind {
		return token{}, errKind
	}
	if !now.Before(t.expires) {
		return token{}, errExpired
	}
	if t.client != clientKey(client) {
		return token{}, errMoved
	}
	return t, nil
}

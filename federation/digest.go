package federation

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// digestStatus is the verdict on a body's digests.
type digestStatus uint8

const (
	digestAbsent   digestStatus = iota // no digest fedigate knows
	digestMatch                        // every known digest matches
	digestMismatch                     // one does not, or a digest header does not parse
)

// bodyHashes computes a body's hashes once, when first asked.
type bodyHashes struct {
	body        []byte
	has256      bool
	has512      bool
	sum256      [sha256.Size]byte
	sum512      [sha512.Size]byte
	sawKnownAlg bool
}

func (b *bodyHashes) sha256() []byte {
	if !b.has256 {
		b.sum256, b.has256 = sha256.Sum256(b.body), true
	}
	return b.sum256[:]
}

func (b *bodyHashes) sha512() []byte {
	if !b.has512 {
		b.sum512, b.has512 = sha512.Sum512(b.body), true
	}
	return b.sum512[:]
}

// base64Max is the longest base64 digest read: SHA-512's.
const base64Max = (sha512.Size + 2) / 3 * 4

// check compares b64, a base64 digest, with want.
func check(b64 string, want []byte) bool {
	var src [base64Max]byte
	var buf [sha512.Size + 3]byte
	if len(b64) > len(src) {
		return false
	}
	n, err := base64.StdEncoding.Decode(buf[:], src[:copy(src[:], b64)])
	return err == nil && subtle.ConstantTimeCompare(buf[:n], want) == 1
}

// checkDigests checks the Digest (RFC 3230: "SHA-256=<base64>", a list)
// and Content-Digest (RFC 9530: a structured dictionary,
// "sha-256=:<base64>:") headers of a request against its body. SHA-256
// and SHA-512 are checked; other algorithms are left to the backend.
func checkDigests(h http.Header, body []byte) digestStatus {
	hs := bodyHashes{body: body}
	for _, line := range h["Digest"] {
		for part := range strings.SplitSeq(line, ",") {
			alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return digestMismatch
			}
			switch {
			case strings.EqualFold(alg, "SHA-256"):
				hs.sawKnownAlg = true
				if !check(val, hs.sha256()) {
					return digestMismatch
				}
			case strings.EqualFold(alg, "SHA-512"):
				hs.sawKnownAlg = true
				if !check(val, hs.sha512()) {
					return digestMismatch
				}
			}
		}
	}
	for _, line := range h["Content-Digest"] {
		bad := false
		ok := sfDictionary(line, func(k string, v sfItem, _ string) {
			var want []byte
			switch k {
			case "sha-256":
				want = hs.sha256()
			case "sha-512":
				want = hs.sha512()
			default:
				return
			}
			hs.sawKnownAlg = true
			if v.kind != sfBytes || !check(v.raw, want) {
				bad = true
			}
		})
		if !ok || bad {
			return digestMismatch
		}
	}
	if hs.sawKnownAlg {
		return digestMatch
	}
	return digestAbsent
}

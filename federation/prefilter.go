package federation

import "bytes"

// needles is what the exact pre-checks know of the filters' substrings:
// enough to prove, without unescaping a JSON text, that none of them can
// be found in it once unescaped. Only a proof of absence is drawn from
// it; "maybe" sends the text through the full path (unescape, then
// containsFold).
//
// Why "absent" is exact. Unescaping a JSON string copies its literal
// bytes (anything but an escape) and replaces each escape by at least
// one byte. Take an occurrence of a substring in the unescaped text: if
// none of its bytes came from an escape, it is a run of literal bytes,
// which the same ASCII-folded search finds in the raw text; otherwise an
// escape gave one of its bytes. mayContain therefore answers "maybe"
// when a substring is in the raw text, or when an escape gives a byte
// that some substring holds (in either ASCII case; any \u escape of a
// rune at or above U+0080, lone surrogates included, gives only bytes at
// or above 0x80), or when an escape is malformed (unescaping fails
// there, which changes the verdict: the full path must see it).
type needles struct {
	subs []string  // lower case, as in filter.subs
	set  [256]bool // the bytes an escape must not give: the substrings' bytes, in either ASCII case
	high bool      // a substring holds a byte at or above 0x80
}

func (n *needles) add(sub string) {
	n.subs = append(n.subs, sub)
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		n.set[c] = true
		if 'a' <= c && c <= 'z' {
			n.set[c-'a'+'A'] = true
		}
		if c >= 0x80 {
			n.high = true
		}
	}
}

// simpleEscapes maps the character after a backslash to the byte it
// stands for (0: not a one-character escape; \u is read apart).
var simpleEscapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// mayContain reports whether raw, the inside of a JSON string, could
// hold one of the substrings once unescaped, or has a malformed escape.
// A whole body may be given too: outside strings a valid body holds no
// backslash, so the escapes are read in the same steps as each string's
// (and a malformed one answers "maybe").
func (n *needles) mayContain(raw []byte) bool {
	for _, sub := range n.subs {
		if containsFold(raw, sub) {
			return true
		}
	}
	for i := 0; ; {
		j := nextBackslash(raw, i)
		if j < 0 {
			return false
		}
		i = j + 1
		if i >= len(raw) {
			return true
		}
		if c := simpleEscapes[raw[i]]; c != 0 {
			if n.set[c] {
				return true
			}
			i++
			continue
		}
		if raw[i] != 'u' {
			return true
		}
		r, k := hex4(raw[i+1:])
		switch {
		case k == 0:
			return true
		case r >= 0x80:
			if n.high {
				return true
			}
		case n.set[r]:
			return true
		}
		i += 1 + k
	}
}

// nextBackslash is the index of the first backslash in raw at or after
// i, or -1. Escapes come in clusters (the quotes of an HTML attribute,
// \u003c and \u003e around a tag): the next few bytes are looked at
// before bytes.IndexByte is called.
func nextBackslash(raw []byte, i int) int {
	for end := min(i+16, len(raw)); i < end; i++ {
		if raw[i] == '\\' {
			return i
		}
	}
	if j := bytes.IndexByte(raw[i:], '\\'); j >= 0 {
		return i + j
	}
	return -1
}

// nestsAtMost reports whether body cannot nest deeper than depth: it
// holds at most depth brackets that open an object or an array.
func nestsAtMost(body []byte, depth int) bool {
	return bytes.Count(body, []byte{'{'})+bytes.Count(body, []byte{'['}) <= depth
}

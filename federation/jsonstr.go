package federation

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// strRaw consumes a string and returns its inside as it is in the body
// and whether it has escapes. A quote ends the string when an even
// number of backslashes precedes it (they pair up as escaped
// backslashes), so the string is scanned once whatever its escapes.
// Control characters inside are let through (RFC 8259 forbids them;
// accepting more than the backend is the safe side for a filter).
// Escapes are not checked here: unescape does that for the strings the
// filters read.
func (s *jscan) strRaw() (raw []byte, esc bool, ok bool) {
	s.i++ // '"'
	start := s.i
	for {
		q := bytes.IndexByte(s.b[s.i:], '"')
		if q < 0 {
			return nil, false, s.fail()
		}
		q += s.i
		if !esc {
			esc = bytes.IndexByte(s.b[s.i:q], '\\') >= 0
		}
		s.i = q + 1
		if !esc || evenBackslashes(s.b[start:q]) {
			return s.b[start:q], esc, true
		}
	}
}

// evenBackslashes reports whether b ends in an even number of
// backslashes (none included).
func evenBackslashes(b []byte) bool {
	n := 0
	for n < len(b) && b[len(b)-1-n] == '\\' {
		n++
	}
	return n%2 == 0
}

// str consumes a string and returns it unescaped (a slice of the body
// when it has no escapes, else of s.tmp, valid until the next str).
func (s *jscan) str() ([]byte, bool) {
	raw, esc, ok := s.strRaw()
	if !ok || !esc {
		return raw, ok
	}
	return s.unescape(raw)
}

// unescape returns raw, the inside of a string, unescaped into s.tmp
// (valid until the next call); false when an escape is malformed. A lone
// surrogate becomes U+FFFD.
func (s *jscan) unescape(raw []byte) ([]byte, bool) {
	out := s.tmp[:0]
	for j := 0; j < len(raw); {
		k := bytes.IndexByte(raw[j:], '\\') // copy the run up to the next escape
		if k < 0 {
			out = append(out, raw[j:]...)
			break
		}
		out = append(out, raw[j:j+k]...)
		j += k + 1
		if j >= len(raw) {
			return nil, s.fail()
		}
		if c := simpleEscapes[raw[j]]; c != 0 {
			out = append(out, c)
			j++
			continue
		}
		if raw[j] != 'u' {
			return nil, s.fail()
		}
		r, n := hex4(raw[j+1:])
		if n == 0 {
			return nil, s.fail()
		}
		j += 1 + n
		if utf16.IsSurrogate(r) {
			r2, n2 := rune(-1), 0
			if j+1 < len(raw) && raw[j] == '\\' && raw[j+1] == 'u' {
				r2, n2 = hex4(raw[j+2:])
			}
			if d := utf16.DecodeRune(r, r2); n2 > 0 && d != utf8.RuneError {
				r = d
				j += 2 + n2
			} else {
				r = utf8.RuneError
			}
		}
		out = utf8.AppendRune(out, r)
	}
	s.tmp = out
	return out, true
}

// hex4 reads four hex digits: the rune and 4, or 0 when they are not.
func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	a, c, d, e := hexValue[b[0]], hexValue[b[1]], hexValue[b[2]], hexValue[b[3]]
	if (a|c|d|e)&0x10 != 0 {
		return 0, 0
	}
	return rune(a)<<12 | rune(c)<<8 | rune(d)<<4 | rune(e), 4
}

// hexValue is each byte's value as a hex digit, or 0x10 when it is not one.
var hexValue = func() (t [256]byte) {
	for i := range t {
		switch c := byte(i); {
		case isDigit(c):
			t[i] = c - '0'
		case c >= 'a' && c <= 'f':
			t[i] = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			t[i] = c - 'A' + 10
		default:
			t[i] = 0x10
		}
	}
	return t
}()

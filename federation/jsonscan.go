package federation

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a delivered activity (no real one nests
// beyond ten). A deeper body is refused: skipping it would leave its
// content unread by the filters, and the backend's parser may still read
// it.
const maxDepth = 64

// jscan walks a delivered activity in one pass, without allocating,
// reading only what the filters look at: the activity's and its
// object's content, summary and name (and their language maps), the
// URLs of their attachments and tags, and their Mention tags. Everything
// else is skipped but still checked to be JSON (RFC 8259). A key that
// appears twice is read both times: a filter matches what any parser
// could take.
type jscan struct {
	b       []byte
	i       int
	depth   int
	bad     bool // not JSON
	tooDeep bool
	tmp     []byte // unescaped strings; reused
	f       *filters

	seen     [2]uint64 // per scope: the rules whose patterns matched
	mentions [2]int    // per scope: Mention tags
	cu       bool      // the activity is a Create or an Update
}

// scope: the activity itself, or its object.
const (
	scopeTop = 0
	scopeObj = 1
)

func (s *jscan) fail() bool { s.bad = true; return false }

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// activity reads the body; false when it is not a JSON object.
func (s *jscan) activity() bool {
	if s.peek() != '{' {
		return s.fail()
	}
	return s.object(func(k []byte) bool { return s.field(k, scopeTop) })
}

// object reads an object, calling member for each key with s.i at the
// value; member must consume the value.
func (s *jscan) object(member func(k []byte) bool) bool {
	if s.depth++; s.depth > maxDepth {
		s.tooDeep = true
		return s.fail()
	}
	s.i++ // '{'
	if s.peek() == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.peek() != '"' {
			return s.fail()
		}
		k, ok := s.str()
		if !ok {
			return false
		}
		if s.peek() != ':' {
			return s.fail()
		}
		s.i++
		s.ws()
		if !member(k) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return s.fail()
		}
	}
}

// array reads an array, calling elem for each element with s.i at it.
func (s *jscan) array(elem func() bool) bool {
	if s.depth++; s.depth > maxDepth {
		s.tooDeep = true
		return s.fail()
	}
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.ws()
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return s.fail()
		}
	}
}

// skip consumes one value of any kind.
func (s *jscan) skip() bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) bool { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		_, ok := s.strRaw()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || isDigit(c):
		return s.number()
	}
	return s.fail()
}

func (s *jscan) literal(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return s.fail()
	}
	s.i += len(w)
	return true
}

func (s *jscan) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return s.fail()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail()
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail()
		}
	}
	return true
}

// strRaw consumes a string and returns whether it has escapes. Control
// characters inside are let through (RFC 8259 forbids them; accepting
// more than the backend is the safe side for a filter).
func (s *jscan) strRaw() (esc bool, ok bool) {
	s.i++ // '"'
	for {
		rest := s.b[s.i:]
		q := bytes.IndexByte(rest, '"')
		if q < 0 {
			return false, s.fail()
		}
		bs := bytes.IndexByte(rest[:q], '\\')
		if bs < 0 {
			s.i += q + 1
			return esc, true
		}
		esc = true
		s.i += bs + 2 // the backslash and the character it escapes
		if s.i > len(s.b) {
			return false, s.fail()
		}
	}
}

// str consumes a string and returns it unescaped (a slice of the body
// when it has no escapes, else of s.tmp, valid until the next str).
func (s *jscan) str() ([]byte, bool) {
	start := s.i + 1
	esc, ok := s.strRaw()
	if !ok {
		return nil, false
	}
	raw := s.b[start : s.i-1]
	if !esc {
		return raw, true
	}
	out := s.tmp[:0]
	for j := 0; j < len(raw); j++ {
		if raw[j] != '\\' {
			k := bytes.IndexByte(raw[j:], '\\') // copy the run up to the next escape
			if k < 0 {
				k = len(raw) - j
			}
			out = append(out, raw[j:j+k]...)
			j += k - 1
			continue
		}
		j++
		if j >= len(raw) {
			return nil, s.fail()
		}
		switch raw[j] {
		case '"', '\\', '/':
			out = append(out, raw[j])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hex4(raw[j+1:])
			if n == 0 {
				return nil, s.fail()
			}
			j += n
			if utf16.IsSurrogate(r) {
				r2, n2 := rune(-1), 0
				if j+2 < len(raw) && raw[j+1] == '\\' && raw[j+2] == 'u' {
					r2, n2 = hex4(raw[j+3:])
				}
				if d := utf16.DecodeRune(r, r2); n2 > 0 && d != utf8.RuneError {
					r = d
					j += 2 + n2
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, s.fail()
		}
	}
	s.tmp = out
	return out, true
}

// hex4 reads four hex digits: the rune and 4, or 0 when they are not.
func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case isDigit(c):
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}

// field reads the value of member k in scope sc.
func (s *jscan) field(k []byte, sc int) bool {
	switch string(k) {
	case "type":
		if sc == scopeTop {
			return s.types()
		}
	case "content", "summary", "name":
		if s.peek() == '"' {
			return s.text(sc)
		}
	case "contentMap", "summaryMap", "nameMap":
		if s.peek() == '{' {
			return s.object(func([]byte) bool {
				if s.peek() == '"' {
					return s.text(sc)
				}
				return s.skip()
			})
		}
	case "attachment":
		return s.links(sc)
	case "tag":
		return s.tags(sc)
	case "object":
		if sc != scopeTop {
			break
		}
		obj := func() bool {
			if s.peek() == '{' {
				return s.object(func(k []byte) bool { return s.field(k, scopeObj) })
			}
			return s.skip()
		}
		if s.peek() == '[' {
			return s.array(obj)
		}
		return obj()
	}
	return s.skip()
}

// types reads the activity's type: a string or a list of them.
func (s *jscan) types() bool {
	one := func() bool {
		if s.peek() != '"' {
			return s.skip()
		}
		v, ok := s.str()
		if ok && (string(v) == "Create" || string(v) == "Update") {
			s.cu = true
		}
		return ok
	}
	if s.peek() == '[' {
		return s.array(one)
	}
	return one()
}

// text reads a string the filters test.
func (s *jscan) text(sc int) bool {
	v, ok := s.str()
	if ok {
		s.seen[sc] |= s.f.test(v, s.seen[sc])
	}
	return ok
}

// links reads attachments: strings (URLs), lists, and objects whose url
// or href (a string, a Link, or a list of them) the filters test.
func (s *jscan) links(sc int) bool {
	switch s.peek() {
	case '"':
		return s.text(sc)
	case '[':
		return s.array(func() bool { return s.links(sc) })
	case '{':
		return s.object(func(k []byte) bool {
			if string(k) == "url" || string(k) == "href" {
				return s.links(sc)
			}
			return s.skip()
		})
	}
	return s.skip()
}

// tags reads tags like links, counting the Mention ones.
func (s *jscan) tags(sc int) bool {
	switch s.peek() {
	case '[':
		return s.array(func() bool { return s.tag(sc) })
	case '{':
		return s.tag(sc)
	}
	return s.links(sc)
}

func (s *jscan) tag(sc int) bool {
	if s.peek() != '{' {
		return s.links(sc)
	}
	mention := false
	ok := s.object(func(k []byte) bool {
		switch string(k) {
		case "url", "href":
			return s.links(sc)
		case "type":
			if s.peek() == '"' {
				v, ok := s.str()
				mention = mention || ok && string(v) == "Mention"
				return ok
			}
		}
		return s.skip()
	})
	if mention {
		s.mentions[sc]++
	}
	return ok
}

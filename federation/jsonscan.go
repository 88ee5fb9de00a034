package federation

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

	prechecks bool // a text is unescaped only when needles.mayContain says it may match

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
		_, _, ok := s.strRaw()
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

// text reads a string the filters test. With prechecks, an escaped one
// is unescaped only when an RE2 rule is still to be tested in its scope
// or needles.mayContain says a substring may be in it (or an escape is
// malformed, which unescaping then reports).
func (s *jscan) text(sc int) bool {
	v, esc, ok := s.strRaw()
	if !ok {
		return false
	}
	if esc {
		if s.prechecks && ^s.seen[sc]&s.f.reRules == 0 && !s.f.needles.mayContain(v) {
			return true
		}
		if v, ok = s.unescape(v); !ok {
			return false
		}
	}
	s.seen[sc] |= s.f.test(v, s.seen[sc])
	return true
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

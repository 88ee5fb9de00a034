package federation

// Structured fields (RFC 8941, with RFC 9651's dates and display
// strings), as far as Signature-Input (RFC 9421) and Content-Digest
// (RFC 9530) need them: a Dictionary whose members are Items or Inner
// Lists with Parameters. Parsing is strict: a header that does not parse
// is malformed as a whole. Nothing here allocates.

type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString // raw: the characters between the quotes, escapes kept
	sfToken
	sfBytes // raw: the base64 between the colons
	sfBool
	sfDate
	sfDisplay
	sfInnerList // raw: the list between the parentheses
)

// sfItem is one bare item (or an inner list) as written.
type sfItem struct {
	kind sfKind
	raw  string
	num  int64 // integers and dates; booleans as 0 or 1
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }
func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool   { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isTChar is RFC 9110's tchar.
func isTChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func (p *sfParser) key() (string, bool) {
	c := p.peek()
	if !isLCAlpha(c) && c != '*' {
		return "", false
	}
	start := p.i
	for p.i++; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
	}
	return p.s[start:p.i], true
}

func (p *sfParser) number() (sfItem, bool) {
	start := p.i
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	if !isDigit(p.peek()) {
		return sfItem{}, false
	}
	var n int64
	digits, dot, frac := 0, false, 0
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		switch {
		case isDigit(c):
			if dot {
				frac++
			} else {
				digits++
				n = n*10 + int64(c-'0')
			}
		case c == '.' && !dot:
			if digits > 12 {
				return sfItem{}, false
			}
			dot = true
			continue
		default:
			goto done
		}
		if !dot && digits > 15 || frac > 3 {
			return sfItem{}, false
		}
	}
done:
	if dot {
		if frac == 0 {
			return sfItem{}, false
		}
		return sfItem{kind: sfDecimal, raw: p.s[start:p.i]}, true
	}
	if neg {
		n = -n
	}
	return sfItem{kind: sfInteger, raw: p.s[start:p.i], num: n}, true
}

func (p *sfParser) bareItem() (sfItem, bool) {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		p.i++
		start := p.i
		for p.i < len(p.s) {
			c := p.s[p.i]
			switch {
			case c == '\\':
				if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
					return sfItem{}, false
				}
				p.i += 2
			case c == '"':
				p.i++
				return sfItem{kind: sfString, raw: p.s[start : p.i-1]}, true
			case c < 0x20 || c > 0x7e:
				return sfItem{}, false
			default:
				p.i++
			}
		}
		return sfItem{}, false
	case isAlpha(c) || c == '*':
		start := p.i
		for p.i++; p.i < len(p.s) && (isTChar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/'); p.i++ {
		}
		return sfItem{kind: sfToken, raw: p.s[start:p.i]}, true
	case c == ':':
		p.i++
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != ':' {
			c := p.s[p.i]
			if !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
				return sfItem{}, false
			}
			p.i++
		}
		if p.eof() {
			return sfItem{}, false
		}
		p.i++
		return sfItem{kind: sfBytes, raw: p.s[start : p.i-1]}, true
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return sfItem{kind: sfBool, num: int64(p.s[p.i-1] - '0')}, true
		}
		return sfItem{}, false
	case c == '@':
		p.i++
		it, ok := p.number()
		if !ok || it.kind != sfInteger {
			return sfItem{}, false
		}
		it.kind = sfDate
		return it, true
	case c == '%':
		if p.i+1 >= len(p.s) || p.s[p.i+1] != '"' {
			return sfItem{}, false
		}
		p.i += 2
		start := p.i
		for p.i < len(p.s) {
			c := p.s[p.i]
			switch {
			case c == '%':
				if p.i+2 >= len(p.s) || !isLowerHex(p.s[p.i+1]) || !isLowerHex(p.s[p.i+2]) {
					return sfItem{}, false
				}
				p.i += 3
			case c == '"':
				p.i++
				return sfItem{kind: sfDisplay, raw: p.s[start : p.i-1]}, true
			case c < 0x20 || c > 0x7e:
				return sfItem{}, false
			default:
				p.i++
			}
		}
		return sfItem{}, false
	}
	return sfItem{}, false
}

func isLowerHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' }

// params reads ";key[=item]" parameters and returns them as written.
func (p *sfParser) params() (string, bool) {
	start := p.i
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		if _, ok := p.key(); !ok {
			return "", false
		}
		if p.peek() == '=' {
			p.i++
			if _, ok := p.bareItem(); !ok {
				return "", false
			}
		}
	}
	return p.s[start:p.i], true
}

func (p *sfParser) innerList() (sfItem, bool) {
	p.i++ // '('
	start := p.i
	for {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return sfItem{kind: sfInnerList, raw: p.s[start : p.i-1]}, true
		}
		if _, ok := p.bareItem(); !ok {
			return sfItem{}, false
		}
		if _, ok := p.params(); !ok {
			return sfItem{}, false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return sfItem{}, false
		}
	}
}

// sfDictionary parses one field line as a Dictionary and calls visit for
// each member in order (a repeated key is visited again: the last one is
// the member, by RFC 8941). It reports whether the whole line parsed.
func sfDictionary(line string, visit func(key string, v sfItem, params string)) bool {
	p := sfParser{s: line}
	p.skipSP()
	if p.eof() {
		return true // an empty line adds no member
	}
	for {
		k, ok := p.key()
		if !ok {
			return false
		}
		v := sfItem{kind: sfBool, num: 1}
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				v, ok = p.innerList()
			} else {
				v, ok = p.bareItem()
			}
			if !ok {
				return false
			}
		}
		params, ok := p.params()
		if !ok {
			return false
		}
		visit(k, v, params)
		p.skipOWS()
		if p.eof() {
			return true
		}
		if p.peek() != ',' {
			return false
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return false // a trailing comma
		}
	}
}

// sfEachParam calls visit for each parameter of params, a string that
// sfParser.params accepted.
func sfEachParam(params string, visit func(key string, v sfItem)) {
	p := sfParser{s: params}
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		k, _ := p.key()
		v := sfItem{kind: sfBool, num: 1}
		if p.peek() == '=' {
			p.i++
			v, _ = p.bareItem()
		}
		visit(k, v)
	}
}

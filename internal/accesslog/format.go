package accesslog

import (
	"net/netip"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Format is the shape of a line: the bytes slog's TextHandler or
// JSONHandler would write for the same record.
type Format uint8

const (
	// Text is slog.TextHandler's key=value line (log.format = "text").
	Text Format = iota
	// JSON is slog.JSONHandler's object (log.format = "json").
	JSON
)

// Line is one request's access-log record. The fields are written in this
// order, then Extra in its order.
type Line struct {
	Time     time.Time
	Client   netip.Addr // the invalid Addr is written "invalid IP", as its String
	Method   string
	Path     string
	Status   int
	Bytes    int64
	Duration time.Duration
	Route    string
	Extra    []Field // after route; nil: none
}

// Field is an extra key and its value (a string, or an integer when made
// by Int), for what a later part of the edge adds to the line, such as a
// cache verdict.
type Field struct {
	Key   string
	str   string
	num   int64
	isNum bool
}

// String is a field with a string value.
func String(key, value string) Field { return Field{Key: key, str: value} }

// Int is a field with an integer value.
func Int(key string, value int64) Field { return Field{Key: key, num: value, isNum: true} }

// textTime is slog.TextHandler's time: RFC 3339 with milliseconds, cut
// (not rounded), the zone as Z or ±hh:mm.
const textTime = "2006-01-02T15:04:05.000Z07:00"

// appendLine appends l in format f, newline included.
func appendLine(b []byte, f Format, l *Line) []byte {
	t := l.Time.Round(0) // no monotonic reading, as slog
	if f == JSON {
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"INFO","msg":"request","client":`...)
	} else {
		b = append(b, "time="...)
		b = t.AppendFormat(b, textTime)
		b = append(b, " level=INFO msg=request client="...)
	}
	b = appendClient(b, f, l.Client)
	b = appendKey(b, f, "method")
	b = appendString(b, f, l.Method)
	b = appendKey(b, f, "path")
	b = appendString(b, f, l.Path)
	b = appendKey(b, f, "status")
	b = strconv.AppendInt(b, int64(l.Status), 10)
	b = appendKey(b, f, "bytes")
	b = strconv.AppendInt(b, l.Bytes, 10)
	b = appendKey(b, f, "duration")
	if f == JSON {
		b = strconv.AppendInt(b, int64(l.Duration), 10) // as json.Marshal
	} else {
		b = append(b, l.Duration.String()...) // inlined: no allocation
	}
	b = appendKey(b, f, "route")
	b = appendString(b, f, l.Route)
	for i := range l.Extra {
		x := &l.Extra[i]
		b = appendKey(b, f, x.Key)
		if x.isNum {
			b = strconv.AppendInt(b, x.num, 10)
		} else {
			b = appendString(b, f, x.str)
		}
	}
	if f == JSON {
		b = append(b, '}')
	}
	return append(b, '\n')
}

// appendKey appends the separator before key, key, and what follows it.
func appendKey(b []byte, f Format, key string) []byte {
	if f == JSON {
		b = append(b, ',')
		b = appendString(b, f, key)
		return append(b, ':')
	}
	b = append(b, ' ')
	b = appendString(b, f, key)
	return append(b, '=')
}

// appendClient writes a as slog writes a.String(), without building it.
func appendClient(b []byte, f Format, a netip.Addr) []byte {
	if !a.IsValid() || a.Zone() != "" {
		// a zone may hold anything (quoting, escaping): the rare slow path
		return appendString(b, f, a.String())
	}
	// digits, hex letters, dots and colons: never quoted nor escaped
	if f == JSON {
		b = append(b, '"')
		b = a.AppendTo(b)
		return append(b, '"')
	}
	return a.AppendTo(b)
}

// appendString appends s as slog does: a JSON string, or bare text unless
// it needs quoting (then Go-quoted), so no value can break the line.
func appendString(b []byte, f Format, s string) []byte {
	if f == JSON {
		b = append(b, '"')
		b = appendJSONEscaped(b, s)
		return append(b, '"')
	}
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting is slog.TextHandler's rule: empty, a space, '=', '"', a
// control byte, invalid UTF-8, or a non-printing or space rune.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += n
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendJSONEscaped is slog.JSONHandler's string escaping: '"', '\\' and
// control bytes escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped; '<', '>' and '&' kept.
func appendJSONEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	return append(b, s[start:]...)
}

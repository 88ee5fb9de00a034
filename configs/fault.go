package configs

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinels for errors.Is on a Fault.
var (
	ErrSyntax        = errors.New("syntax error")
	ErrUnknownKey    = errors.New("unknown key")
	ErrBadValue      = errors.New("bad value")
	ErrContradiction = errors.New("contradiction")
)

// Fault is one thing wrong with a config, where it is and how to mend it.
// Its Error() is "file:line: key: message".
type Fault struct {
	File string
	Line int    // 0 when the fault has no line (a built-in value)
	Key  string // dotted key, e.g. "server.listen", "ratelimit.rule[2].limit"
	Msg  string
	Kind error // one of the sentinels above
}

func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString(f.File)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
	}
	b.WriteString(": ")
	if f.Key != "" {
		b.WriteString(f.Key)
		b.WriteString(": ")
	}
	b.WriteString(f.Msg)
	return b.String()
}

func (f *Fault) Unwrap() error { return f.Kind }

// Faults lists every Fault in an error returned by Load or Parse, in order.
func Faults(err error) []*Fault {
	var out []*Fault
	var walk func(error)
	walk = func(e error) {
		var f *Fault
		if errors.As(e, &f) && e == error(f) {
			out = append(out, f)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		if errors.As(e, &f) {
			out = append(out, f)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// faults collects Faults for one file, placing each at its key's line.
type faults struct {
	file string
	pos  positions
	list []error
}

func (fs *faults) add(kind error, key, format string, args ...any) {
	fs.list = append(fs.list, &Fault{
		File: fs.file,
		Line: fs.pos.line(key),
		Key:  displayKey(key),
		Msg:  fmt.Sprintf(format, args...),
		Kind: kind,
	})
}

func (fs *faults) bad(key, format string, args ...any) {
	fs.add(ErrBadValue, key, format, args...)
}

func (fs *faults) contradiction(key, format string, args ...any) {
	fs.add(ErrContradiction, key, format, args...)
}

// err joins the faults in line order (stable: same-line faults keep the
// order they were found in).
func (fs *faults) err() error {
	sort.SliceStable(fs.list, func(i, j int) bool {
		return fs.list[i].(*Fault).Line < fs.list[j].(*Fault).Line
	})
	return errors.Join(fs.list...)
}

// displayKey turns the internal "ratelimit.rule.2.limit" into
// "ratelimit.rule[2].limit", what an admin recognises.
func displayKey(key string) string {
	parts := strings.Split(key, ".")
	var b strings.Builder
	for i, p := range parts {
		if p != "" && p[0] >= '0' && p[0] <= '9' {
			fmt.Fprintf(&b, "[%s]", p)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

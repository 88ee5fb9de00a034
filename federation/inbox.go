package federation

import (
	"fmt"
	"strings"

	"github.com/fedigate/fedigate/internal/backendroute"
)

// inboxPaths are the preset's inbox paths, each a list of segments where
// "*" is any one segment (a user name).
type inboxPaths [][]string

func compileInboxPaths(paths []string) (inboxPaths, error) {
	var out inboxPaths
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("inbox path %q: want an absolute path", p)
		}
		segs := strings.Split(backendroute.Canonical(p)[1:], "/")
		for _, s := range segs {
			if s != "*" && strings.Contains(s, "*") {
				return nil, fmt.Errorf("inbox path %q: * stands for a whole segment", p)
			}
		}
		out = append(out, segs)
	}
	return out, nil
}

// match reports whether p, a canonical path, is an inbox. It does not
// allocate.
func (in inboxPaths) match(p string) bool {
	if len(in) == 0 || len(p) < 2 {
		return false
	}
	rest := p[1:]
next:
	for _, segs := range in {
		r := rest
		for i, want := range segs {
			seg, tail, more := strings.Cut(r, "/")
			if (want != "*" || seg == "") && seg != want {
				continue next
			}
			if more != (i < len(segs)-1) {
				continue next
			}
			r = tail
		}
		return true
	}
	return false
}

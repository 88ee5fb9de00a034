package federation

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/fedigate/fedigate/configs"
)

// filter is one compiled [[federation.filter]].
type filter struct {
	name        string
	subs        []string // lower case; matched without regard to ASCII case
	res         []*regexp.Regexp
	minMentions int
	reject      bool
}

// filters are the compiled rules, in the config's order: the first that
// matches decides.
type filters struct {
	list    []filter
	needles needles // every rule's substrings, for the exact pre-checks
	reRules uint64  // the rules with an RE2 pattern (which the pre-checks do not cover)
	quick   bool    // every rule has substrings and no RE2 pattern: a body that cannot hold one passes unparsed
}

func compileFilters(cfg []configs.Filter) (*filters, error) {
	if len(cfg) > configs.MaxFilters {
		return nil, fmt.Errorf("%d filters: at most %d", len(cfg), configs.MaxFilters)
	}
	f := &filters{}
	for i, c := range cfg {
		r := filter{name: c.Name, minMentions: c.MinMentions, reject: c.Action == configs.FilterReject}
		if c.Action != configs.FilterDrop && c.Action != configs.FilterReject {
			return nil, fmt.Errorf("filter[%d] %q: action %q: want drop or reject", i, c.Name, c.Action)
		}
		if len(c.Match) == 0 && c.MinMentions <= 0 {
			return nil, fmt.Errorf("filter[%d] %q: needs match or min_mentions", i, c.Name)
		}
		for _, m := range c.Match {
			if pat, ok := strings.CutPrefix(m, configs.RegexPrefix); ok {
				re, err := regexp.Compile(pat)
				if err != nil {
					return nil, fmt.Errorf("filter[%d] %q: %w", i, c.Name, err)
				}
				r.res = append(r.res, re)
				continue
			}
			if m == "" {
				return nil, fmt.Errorf("filter[%d] %q: an empty substring", i, c.Name)
			}
			r.subs = append(r.subs, strings.ToLower(m))
			f.needles.add(strings.ToLower(m))
		}
		if len(r.res) > 0 {
			f.reRules |= 1 << i
		}
		f.list = append(f.list, r)
	}
	f.quick = f.reRules == 0
	for i := range f.list {
		f.quick = f.quick && len(f.list[i].subs) > 0
	}
	return f, nil
}

// test returns the rules, among those not in done, that v matches.
func (f *filters) test(v []byte, done uint64) uint64 {
	var hit uint64
	for i := range f.list {
		bit := uint64(1) << i
		if done&bit != 0 {
			continue
		}
		r := &f.list[i]
		for _, sub := range r.subs {
			if containsFold(v, sub) {
				hit |= bit
				break
			}
		}
		if hit&bit != 0 {
			continue
		}
		for _, re := range r.res {
			if re.Match(v) {
				hit |= bit
				break
			}
		}
	}
	return hit
}

// containsFold reports whether h contains sub (lower case) without
// regard to ASCII case. Candidates are found with bytes.IndexByte, for
// each case of the first byte; where the other case is next is kept, so
// each case's search goes over the text once.
func containsFold(h []byte, sub string) bool {
	if len(sub) == 0 {
		return true
	}
	if len(sub) > len(h) {
		return false
	}
	first, upper := sub[0], sub[0]
	if 'a' <= first && first <= 'z' {
		upper = first - 'a' + 'A'
	}
	end := len(h) - len(sub) + 1 // candidates start before end
	nextLow, nextUp := -1, -1    // next candidate of each case (-1: not looked for yet)
	if upper == first {
		nextUp = end // one case only
	}
	for i := 0; i < end; {
		if nextLow < i {
			nextLow = indexFrom(h[:end], i, first)
		}
		if nextUp < i {
			nextUp = indexFrom(h[:end], i, upper)
		}
		i = min(nextLow, nextUp)
		if i >= end {
			return false
		}
		if equalFoldLower(h[i+1:i+len(sub)], sub[1:]) {
			return true
		}
		i++
	}
	return false
}

// indexFrom is the index of c in h at or after i, or len(h).
func indexFrom(h []byte, i int, c byte) int {
	if j := bytes.IndexByte(h[i:], c); j >= 0 {
		return i + j
	}
	return len(h)
}

// equalFoldLower reports whether b equals lower (lower case) without
// regard to ASCII case.
func equalFoldLower(b []byte, lower string) bool {
	for j := 0; j < len(lower); j++ {
		c := b[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[j] {
			return false
		}
	}
	return true
}

// filterVerdict is the outcome of the filters on one body.
type filterVerdict struct {
	rule    int  // index of the rule that matched; -1 = none
	notJSON bool // the body is not a JSON object: passed on
	tooDeep bool // nested deeper than maxDepth: refused
}

// apply runs the filters on body; tmp is scratch for unescaped strings
// (returned for reuse).
//
// When every rule needs a substring, a body that holds none of them even
// once unescaped (needles.mayContain) and too few brackets to be too deep
// passes without being parsed: the full path could only pass it too
// (notJSON is then false, whatever the body).
func (f *filters) apply(body []byte, tmp []byte) (filterVerdict, []byte) {
	if f.quick && nestsAtMost(body, maxDepth) && !f.needles.mayContain(body) {
		return filterVerdict{rule: -1}, tmp
	}
	return f.parse(body, tmp, true)
}

// parse runs the filters on body through the scanner; with prechecks, an
// escaped string is unescaped only when needles.mayContain says it may
// hold a substring or an RE2 rule is still to be tested on it (see
// jscan.text). Tests compare it with and without them.
func (f *filters) parse(body []byte, tmp []byte, prechecks bool) (filterVerdict, []byte) {
	s := jscan{b: body, tmp: tmp, f: f, prechecks: prechecks}
	s.activity()
	v := filterVerdict{rule: -1, notJSON: s.bad && !s.tooDeep, tooDeep: s.tooDeep}
	if s.bad {
		return v, s.tmp
	}
	hits := s.seen[scopeTop]
	mentions := s.mentions[scopeTop]
	if s.cu {
		hits |= s.seen[scopeObj]
		mentions += s.mentions[scopeObj]
	}
	for i := range f.list {
		r := &f.list[i]
		if (len(r.subs)+len(r.res) == 0 || hits&(1<<i) != 0) && mentions >= r.minMentions {
			v.rule = i
			break
		}
	}
	return v, s.tmp
}

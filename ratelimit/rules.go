package ratelimit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/backendroute"
)

// rule is one compiled configs.Rule.
type rule struct {
	name            string
	id              string // name|limit|period: a rule whose id is unchanged keeps its counts across a reload
	methods         []string
	paths           pathSet // the paths it counts
	except          pathSet // paths among them it never counts
	limit           int
	period          time.Duration
	unauthenticated bool
	exempt          []netip.Prefix
	limitText       string // X-RateLimit-Limit value, formatted once
}

func compileRule(r configs.Rule) (rule, error) {
	switch {
	case r.Name == "":
		return rule{}, fmt.Errorf("a rule needs a name")
	case r.Limit < 1 || r.Limit > configs.MaxRuleLimit:
		return rule{}, fmt.Errorf("rule %q: limit %d: want 1 to %d", r.Name, r.Limit, configs.MaxRuleLimit)
	case r.Period < configs.MinRulePeriod:
		return rule{}, fmt.Errorf("rule %q: period %v: want at least %v", r.Name, r.Period, configs.MinRulePeriod)
	case len(r.Paths) == 0:
		return rule{}, fmt.Errorf("rule %q: no paths", r.Name)
	}
	c := rule{
		name:            r.Name,
		id:              r.Name + "|" + strconv.Itoa(r.Limit) + "|" + strconv.FormatInt(r.Period.Milliseconds(), 10),
		limit:           r.Limit,
		period:          r.Period,
		unauthenticated: r.Unauthenticated,
		exempt:          append([]netip.Prefix(nil), r.Exempt...),
		limitText:       strconv.Itoa(r.Limit),
	}
	for _, m := range r.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			return rule{}, fmt.Errorf("rule %q: empty method", r.Name)
		}
		c.methods = append(c.methods, m)
	}
	var err error
	if c.paths, err = compilePaths(r.Name, r.Paths); err != nil {
		return rule{}, err
	}
	if c.except, err = compilePaths(r.Name, r.Except); err != nil {
		return rule{}, err
	}
	return c, nil
}

// pathSet is a set of a rule's paths: lower-case exact ones, canonical,
// and lower-case prefixes (the pattern less its "*").
type pathSet struct{ exact, prefixes []string }

func compilePaths(name string, paths []string) (pathSet, error) {
	var s pathSet
	for _, p := range paths {
		base, prefix := strings.CutSuffix(p, "*")
		if !strings.HasPrefix(p, "/") || strings.Contains(base, "*") {
			return pathSet{}, fmt.Errorf("rule %q: path %q: want /exact or /prefix*", name, p)
		}
		base = backendroute.LowerASCII(base)
		if prefix {
			s.prefixes = append(s.prefixes, base)
		} else {
			s.exact = append(s.exact, backendroute.Canonical(base))
		}
	}
	return s, nil
}

// match reports whether the canonical path p is one of the set's.
func (s *pathSet) match(p string) bool {
	for _, e := range s.exact {
		if p == e {
			return true
		}
	}
	for _, pre := range s.prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// matchMethod reports whether the rule covers a request method. HEAD is
// routed as GET by the backends.
func (c *rule) matchMethod(method string) bool {
	if len(c.methods) == 0 {
		return true
	}
	for _, m := range c.methods {
		if m == method || (method == "HEAD" && m == "GET") {
			return true
		}
	}
	return false
}

// matchOverride reports whether the rule covers a POST that a method
// override routes as o.Method, or that could be routed as anything.
func (c *rule) matchOverride(o backendroute.Override) bool {
	return o.Ambiguous || (o.Method != "" && c.matchMethod(o.Method))
}

// matchPath reports whether the rule covers p, a path already normalised
// by backendroute.Canonical.
func (c *rule) matchPath(p string) bool {
	return c.paths.match(p) && !c.except.match(p)
}

// matchRequest matches method and path; p is backendroute.Canonical(r.URL.Path).
func (c *rule) matchRequest(method, p string) bool {
	return c.matchPath(p) && c.matchMethod(method)
}

package ratelimit

import (
	"fmt"
	"net/http"
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
	exact           []string // lower-case exact paths
	prefixes        []string // lower-case path prefixes (the pattern less its "*")
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
	for _, p := range r.Paths {
		base, prefix := strings.CutSuffix(p, "*")
		if !strings.HasPrefix(p, "/") || strings.Contains(base, "*") {
			return rule{}, fmt.Errorf("rule %q: path %q: want /exact or /prefix*", r.Name, p)
		}
		base = backendroute.LowerASCII(base)
		if prefix {
			c.prefixes = append(c.prefixes, base)
		} else {
			c.exact = append(c.exact, backendroute.Canonical(base))
		}
	}
	return c, nil
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
	for _, e := range c.exact {
		if p == e {
			return true
		}
	}
	for _, pre := range c.prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// matchRequest matches method and path; p is backendroute.Canonical(r.URL.Path).
func (c *rule) matchRequest(method, p string) bool {
	return c.matchPath(p) && c.matchMethod(method)
}

// authenticated reports whether a request carries credentials: a
// non-empty Authorization header or a non-empty session cookie. It does
// not allocate.
func authenticated(h http.Header) bool {
	for _, v := range h["Authorization"] {
		if strings.TrimSpace(v) != "" {
			return true
		}
	}
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || strings.TrimSpace(val) == "" {
				continue
			}
			name = strings.TrimSpace(name)
			// the session cookies of Mastodon and of Pleroma/Akkoma
			for _, s := range [...]string{"_session_id", "_mastodon_session", "__Host-pleroma_key", "pleroma_key"} {
				if name == s {
					return true
				}
			}
		}
	}
	return false
}

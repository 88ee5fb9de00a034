package federation

import (
	"strings"

	"golang.org/x/net/idna"
)

// domainSet answers whether a sending domain is refused. Both maps hold
// lower-case ASCII (punycode) names: exact refuses the name itself, sub
// every name below it.
type domainSet struct {
	exact map[string]struct{}
	sub   map[string]struct{}
}

func newDomainSet() *domainSet {
	return &domainSet{exact: map[string]struct{}{}, sub: map[string]struct{}{}}
}

// has reports whether d (lower case) is refused. It walks d's parents
// ("a.b.example", "b.example", "example"): a few map lookups, no
// allocation.
func (s *domainSet) has(d string) bool {
	if len(s.exact) == 0 && len(s.sub) == 0 {
		return false
	}
	if _, ok := s.exact[d]; ok {
		return true
	}
	if len(s.sub) == 0 {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] == '.' {
			if _, ok := s.sub[d[i+1:]]; ok {
				return true
			}
		}
	}
	return false
}

// normalDomain is a configured or listed domain as a key of domainSet:
// trimmed, without a trailing dot, lower case, internationalised names
// in punycode (the form key ids carry).
func normalDomain(d string) (string, bool) {
	a := strings.TrimSuffix(strings.TrimSpace(d), ".")
	for i := 0; i < len(a); i++ {
		if a[i] >= 0x80 {
			var err error
			if a, err = idna.Lookup.ToASCII(a); err != nil {
				return "", false
			}
			break
		}
	}
	if !validHost(a) {
		return "", false
	}
	return strings.ToLower(a), true
}

// addPattern adds a deny_domains entry: "spam.example" refuses that name,
// "*.spam.example" the names below it.
func (s *domainSet) addPattern(p string) bool {
	rest, wild := strings.CutPrefix(strings.TrimSpace(p), "*.")
	d, ok := normalDomain(rest)
	if !ok {
		return false
	}
	if wild {
		s.sub[d] = struct{}{}
	} else {
		s.exact[d] = struct{}{}
	}
	return true
}

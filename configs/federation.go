package configs

import (
	"os"
	"regexp"
	"strings"
	"time"
)

// Federation is the [federation] section: the guard in front of the inbox
// paths (package federation). InboxPaths come from the preset; the custom
// preset states them with inbox_paths.
type Federation struct {
	// InboxPaths are the exact paths of the backend's inboxes; a segment
	// "*" stands for one path segment (a user name).
	InboxPaths       []string      `toml:"inbox_paths"`
	DenyDomains      []string      `toml:"deny_domains"` // "spam.example", "*.spam.example"
	Blocklist        string        `toml:"blocklist"`    // Mastodon's domain-block export (CSV); "" = none
	Limit            int           `toml:"limit"`        // per sending domain per client address per Period; 0 = off
	Period           time.Duration `toml:"period"`
	MaxBody          int64         `toml:"max_body,size"`
	RequireSignature bool          `toml:"require_signature"`
	CheckDigest      bool          `toml:"check_digest"`
	MaxClockSkew     time.Duration `toml:"max_clock_skew"`
	Filters          []Filter      `toml:"filter"`
}

// Filter is one [[federation.filter]]: a content rule on the delivered
// activity.
type Filter struct {
	Name string `toml:"name"`
	// Match holds substrings (matched without regard to ASCII case) or
	// "re:" + an RE2 pattern; any one matching is a match. Empty: every
	// activity with at least MinMentions mentions matches.
	Match       []string `toml:"match"`
	MinMentions int      `toml:"min_mentions"`
	Action      string   `toml:"action"` // drop | reject
}

// Filter actions.
const (
	FilterDrop   = "drop"
	FilterReject = "reject"
)

// MaxFilters is the most [[federation.filter]] a config may hold (a
// match is a bit of a 64-bit word).
const MaxFilters = 64

// RegexPrefix marks a Filter.Match entry as an RE2 pattern.
const RegexPrefix = "re:"

// defaultFederation is the section as every preset starts it.
func defaultFederation(inbox []string) Federation {
	return Federation{InboxPaths: inbox, Period: 5 * time.Minute, MaxBody: 1 << 20, CheckDigest: true, MaxClockSkew: time.Hour}
}

// Inbox paths of the presets (FIELD-NOTES "Inbox deliveries").
var (
	mastodonInboxes = []string{"/inbox", "/users/*/inbox", "/actor/inbox"}
	pleromaInboxes  = []string{"/inbox", "/users/*/inbox", "/relay/inbox"}
)

func validateFederation(c *Config, fs *faults) {
	f := &c.Federation
	for i, p := range f.InboxPaths {
		if !inboxPathOK(p) {
			fs.bad(key("federation.inbox_paths", i), "%q: an inbox path starts with / and may use * for one whole segment, like \"/users/*/inbox\"", p)
		}
	}
	for i, d := range f.DenyDomains {
		n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(strings.TrimPrefix(d, "*."))), ".")
		if !validHostname(n) {
			fs.bad(key("federation.deny_domains", i), "%q is not a domain or \"*.domain\"", d)
		}
	}
	if f.Blocklist != "" {
		if _, err := os.Stat(f.Blocklist); err != nil {
			fs.bad("federation.blocklist", "cannot read %q: %v (export it from Mastodon: Moderation, Federation, Export)", f.Blocklist, unwrapPathErr(err))
		}
	}
	if f.Limit < 0 || f.Limit > MaxRuleLimit {
		fs.bad("federation.limit", "%d: want 0 (off) to %d deliveries per period", f.Limit, MaxRuleLimit)
	}
	if f.Limit > 0 && f.Period < MinRulePeriod {
		fs.bad("federation.period", "%v: want at least %v", f.Period, MinRulePeriod)
	}
	if len(f.Filters) > MaxFilters {
		fs.bad("federation.filter", "%d filters: at most %d", len(f.Filters), MaxFilters)
	}
	if f.MaxBody <= 0 {
		fs.bad("federation.max_body", "must be more than 0, like \"1MB\"")
	} else if f.MaxBody > c.Server.MaxRequestBody {
		fs.contradiction("federation.max_body", "%d bytes is more than server.max_request_body (%d): the edge would refuse those first", f.MaxBody, c.Server.MaxRequestBody)
	}
	if f.MaxClockSkew <= 0 {
		fs.bad("federation.max_clock_skew", "must be more than 0, like \"1h\"")
	}
	if (len(f.DenyDomains) > 0 || f.Blocklist != "" || f.Limit > 0 || f.RequireSignature || len(f.Filters) > 0) && len(f.InboxPaths) == 0 {
		fs.contradiction("federation.inbox_paths", "[federation] is set but no inbox paths are known: list them, like [\"/inbox\", \"/users/*/inbox\"]")
	}
	seen := map[string]int{}
	for i, r := range f.Filters {
		k := key("federation.filter", i)
		if r.Name == "" {
			fs.bad(k, "a filter needs a name (name = \"...\"): the log and metrics say which one acted")
		} else if first, dup := seen[r.Name]; dup {
			fs.contradiction(k+".name", "filter %q is defined twice (first as federation.filter[%d])", r.Name, first)
		} else {
			seen[r.Name] = i
		}
		if len(r.Match) == 0 && r.MinMentions <= 0 {
			fs.bad(k+".match", "filter %q needs match = [...] or min_mentions: as it is it would match every delivery", r.Name)
		}
		for j, m := range r.Match {
			if pat, ok := strings.CutPrefix(m, RegexPrefix); ok {
				if _, err := regexp.Compile(pat); err != nil {
					fs.bad(key(k+".match", j), "%q is not an RE2 pattern: %v", pat, err)
				}
			} else if m == "" {
				fs.bad(key(k+".match", j), "an empty substring matches everything")
			}
		}
		if r.MinMentions < 0 {
			fs.bad(k+".min_mentions", "must be 0 or more")
		}
		switch r.Action {
		case FilterDrop, FilterReject:
		default:
			fs.bad(k+".action", "%q: want \"drop\" (202, never reaches the backend) or \"reject\" (403)", r.Action)
		}
	}
}

// inboxPathOK: an absolute path whose segments are "*" or hold no "*".
func inboxPathOK(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg != "*" && strings.Contains(seg, "*") {
			return false
		}
	}
	return true
}

package configs

import (
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

func validateRateLimit(c *Config, fs *faults, ruleKeys map[string]string) {
	r := &c.RateLimit
	switch r.Store {
	case StoreMemory:
		if r.RedisURL != "" {
			fs.contradiction("ratelimit.redis_url", "redis_url is set but store = \"memory\": set store = \"redis\" or remove it")
		}
	case StoreRedis:
		if r.RedisURL == "" {
			fs.contradiction("ratelimit.store", "store = \"redis\" needs redis_url, like \"redis://127.0.0.1:6379/0\"")
		} else if u, err := url.Parse(r.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			// never echo the URL: it may hold a password
			fs.bad("ratelimit.redis_url", "not a redis://, rediss:// or unix:// URL")
		}
	default:
		fs.bad("ratelimit.store", "%q: want \"memory\" or \"redis\"", r.Store)
	}
	switch r.OnStoreError {
	case OnErrAllow, OnErrDeny:
	default:
		fs.bad("ratelimit.on_store_error", "%q: want \"allow\" or \"deny\"", r.OnStoreError)
	}
	if r.StoreTimeout <= 0 || r.StoreTimeout > MaxStoreTimeout {
		fs.bad("ratelimit.store_timeout", "%v: want more than 0 and at most %q (every limited request waits on it)", r.StoreTimeout, MaxStoreTimeout.String())
	}
	if r.IPv6Prefix < MinIPv6Prefix || r.IPv6Prefix > MaxIPv6Prefix {
		fs.bad("ratelimit.ipv6_prefix", "%d: want a prefix length from %d to %d (64 counts each /64 network as one client)", r.IPv6Prefix, MinIPv6Prefix, MaxIPv6Prefix)
	}
	kept := r.Rules[:0]
	for _, rule := range r.Rules {
		k, fromFile := ruleKeys[rule.Name]
		if !fromFile {
			k = "ratelimit.rule"
		}
		if rule.Disabled {
			continue
		}
		validateRule(fs, k, &rule)
		kept = append(kept, rule)
	}
	r.Rules = kept
	if len(kept) > MaxRules {
		fs.bad("ratelimit.rule", "%d rules (preset and file together): at most %d", len(kept), MaxRules)
	}
}

func validateRule(fs *faults, k string, r *Rule) {
	for i, m := range r.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !validToken(m) {
			fs.bad(key(k+".methods", i), "%q is not an HTTP method", r.Methods[i])
		}
		r.Methods[i] = m
	}
	if len(r.Paths) == 0 {
		fs.bad(k+".paths", "rule %q needs paths, like [\"/auth\"] (a trailing * matches a prefix)", r.Name)
	}
	for _, f := range [...]struct {
		name  string
		paths []string
	}{{"paths", r.Paths}, {"except", r.Except}} {
		for i, p := range f.paths {
			if !strings.HasPrefix(p, "/") || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
				fs.bad(key(k+"."+f.name, i), "%q: a path starts with / and may end in * (a prefix); no other wildcards", p)
			}
		}
	}
	if r.Limit < 1 {
		fs.bad(k+".limit", "rule %q: limit must be at least 1 (to turn a rule off, set disabled = true)", r.Name)
	} else if r.Limit > MaxRuleLimit {
		fs.bad(k+".limit", "rule %q: limit %d: at most %d (the memory store keeps a timestamp per counted request)", r.Name, r.Limit, MaxRuleLimit)
	}
	if r.Period < MinRulePeriod {
		fs.bad(k+".period", "rule %q: period must be at least %q", r.Name, MinRulePeriod.String())
	}
}

func validateSignup(c *Config, fs *faults) {
	s := &c.Signup
	switch s.Gate {
	case GateOff, GatePoW:
	case GateHCaptcha, GateTurnstile:
		if s.SiteKey == "" {
			fs.contradiction("signup.site_key", "gate = %q needs site_key (from the provider's dashboard)", s.Gate)
		}
		if s.Secret != "" && s.SecretEnv != "" {
			fs.contradiction("signup.secret", "set secret or secret_env, not both")
		}
		if s.SecretEnv != "" {
			s.Secret = os.Getenv(s.SecretEnv)
			if s.Secret == "" {
				fs.bad("signup.secret_env", "the environment variable %s is empty or not set", s.SecretEnv)
			}
		} else if s.Secret == "" {
			fs.contradiction("signup.secret", "gate = %q needs secret (or secret_env = \"NAME\" of an environment variable)", s.Gate)
		}
		if s.VerifyURL != "" {
			checkURL(fs, "signup.verify_url", s.VerifyURL, "https", "http")
		}
	default:
		fs.bad("signup.gate", "%q: want \"off\", \"pow\", \"hcaptcha\" or \"turnstile\"", s.Gate)
	}
	powOK := s.PowDifficulty >= MinPowDifficulty && s.PowDifficulty <= MaxPowDifficulty
	if !powOK {
		fs.bad("signup.pow_difficulty", "%d: want %d to %d leading zero bits (each bit doubles a person's wait)", s.PowDifficulty, MinPowDifficulty, MaxPowDifficulty)
	}
	if s.PassTTL < MinPassTTL || s.PassTTL > MaxPassTTL {
		fs.bad("signup.pass_ttl", "%v: want from \"1m\" to \"24h\"", s.PassTTL)
	}
	switch s.API {
	case APIChallenge, APIDeny, APIAllow:
	default:
		fs.bad("signup.api", "%q: want \"challenge\", \"deny\" or \"allow\"", s.API)
	}
	positiveDuration(fs, "signup.verify_timeout", s.VerifyTimeout)
	if s.SecretFile != "" {
		if _, err := os.Stat(s.SecretFile); err != nil {
			fs.bad("signup.secret_file", "cannot read %q: %v", s.SecretFile, unwrapPathErr(err))
		}
	}
	if s.SurgeThreshold < 0 {
		fs.bad("signup.surge_threshold", "must be 0 (off) or more")
	}
	if s.SurgeThreshold > 0 {
		if s.SurgeWindow < MinSurgeWindow {
			fs.bad("signup.surge_window", "%v: want at least %q (attempts are counted in 60 buckets of a sixtieth of it)", s.SurgeWindow, MinSurgeWindow.String())
		}
		positiveDuration(fs, "signup.surge_hold", s.SurgeHold)
		if s.SurgeExtraBits < 0 || s.SurgeExtraBits > MaxSurgeExtraBits || (powOK && s.PowDifficulty+s.SurgeExtraBits > MaxPowTotal) {
			fs.bad("signup.surge_extra_bits", "%d: want 0 to %d, and pow_difficulty + surge_extra_bits at most %d", s.SurgeExtraBits, MaxSurgeExtraBits, MaxPowTotal)
		}
	}
}

func validateEgress(c *Config, fs *faults) {
	e := &c.Egress
	if e.Listen == "" {
		return
	}
	checkListen(fs, "egress.listen", e.Listen, false)
	if host, _, err := net.SplitHostPort(e.Listen); err == nil && !privateListenHost(host) {
		fs.bad("egress.listen", "%q would be an open proxy for the internet: listen on loopback (127.0.0.1) or a private address the backend reaches", e.Listen)
	}
	if e.Upstream == "" {
		fs.bad("egress.upstream", "must be socks5://host:port (WARP: \"socks5://127.0.0.1:40000\"); to go out without one, write \"direct\"")
	} else if e.Upstream != UpstreamDirect {
		checkSOCKS(fs, "egress.upstream", e.Upstream)
	}
	if e.HiddenUpstream != "" {
		checkSOCKS(fs, "egress.hidden_upstream", e.HiddenUpstream)
	}
	for i, a := range e.Allow {
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
			fs.bad(key("egress.allow", i), "%q is not host:port, like \"10.0.0.5:443\" or \"media.internal:80\"", a)
		}
	}
	for i, d := range e.DenyDomains {
		n := strings.TrimSuffix(strings.ToLower(strings.TrimPrefix(d, "*.")), ".")
		if !validHostname(n) {
			fs.bad(key("egress.deny_domains", i), "%q is not a domain or \"*.domain\"", d)
		}
	}
	positiveDuration(fs, "egress.connect_timeout", e.ConnectTimeout)
	positiveDuration(fs, "egress.idle_timeout", e.IdleTimeout)
	if e.MaxConns < 1 {
		fs.bad("egress.max_conns", "must be at least 1")
	}
	if e.MaxConnsPerHost < 1 || e.MaxConnsPerHost > e.MaxConns {
		fs.bad("egress.max_conns_per_host", "%d: want from 1 to max_conns (%d)", e.MaxConnsPerHost, e.MaxConns)
	}
	if e.MaxHeaderBytes < MinHeaderBytes {
		fs.bad("egress.max_header_bytes", "must be at least \"4KB\"")
	}
	switch e.Resolver {
	case ResolverSystem, ResolverUpstream:
	case ResolverDoH:
		if e.Upstream == UpstreamDirect {
			fs.contradiction("egress.resolver", "resolver = \"doh\" sends lookups through the upstream, but upstream = \"direct\"")
		}
		checkURL(fs, "egress.doh_url", e.DoHURL, "https")
	default:
		fs.bad("egress.resolver", "%q: want \"system\", \"doh\" or \"upstream\"", e.Resolver)
	}
	if e.ProbeURL != "" {
		checkURL(fs, "egress.probe_url", e.ProbeURL, "https", "http")
	}
}

func checkSOCKS(fs *faults, k, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "socks5" && u.Scheme != "socks5h") || u.Hostname() == "" || u.Port() == "" {
		// the URL may carry a password: do not echo it
		fs.bad(k, "not a socks5://[user:pass@]host:port URL")
		return
	}
	if u.Path != "" && u.Path != "/" {
		fs.bad(k, "a socks5:// URL has no path")
	}
}

// privateListenHost: loopback, or a private address (a backend in a
// container reaching the host), never every address or a public one.
func privateListenHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate()
}

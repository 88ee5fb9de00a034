package configs

import "time"

// Bounds of the values other packages build on. Validation (validate.go,
// validate_features.go) refuses anything outside them as "file:line: ...";
// the constructors of ratelimit, signupgate and egress check a section they
// are handed against these same constants (a section built in code gets
// the same answer as one loaded from a file), so no two places can
// disagree on a range.
const (
	// MinIPv6Prefix and MaxIPv6Prefix bound ratelimit.ipv6_prefix: the
	// length of the IPv6 network counted as one client (shorter than /16
	// would count whole providers as one).
	MinIPv6Prefix = 16
	MaxIPv6Prefix = 128
	// MaxStoreTimeout bounds ratelimit.store_timeout: every limited
	// request may wait that long on Redis.
	MaxStoreTimeout = 5 * time.Second
	// MaxRules is the most [[ratelimit.rule]] a config may hold: a
	// request's matching rules are collected in a fixed array.
	MaxRules = 64
	// MaxRuleLimit bounds a rule's limit: the memory store keeps one
	// 8-byte timestamp per admitted request in the window, per client.
	MaxRuleLimit = 100_000
	// MinRulePeriod is the shortest window of a rule.
	MinRulePeriod = time.Second

	// MinPowDifficulty and MaxPowDifficulty bound signup.pow_difficulty in
	// leading zero bits: each bit doubles a person's wait.
	MinPowDifficulty = 8
	MaxPowDifficulty = 28
	// MaxSurgeExtraBits bounds signup.surge_extra_bits, and MaxPowTotal
	// pow_difficulty + surge_extra_bits (a surge's difficulty).
	MaxSurgeExtraBits = 8
	MaxPowTotal       = 30
	// MinSurgeWindow is the shortest signup.surge_window: attempts are
	// counted in 60 buckets of a sixtieth of it each.
	MinSurgeWindow = time.Second
	// MinPassTTL and MaxPassTTL bound signup.pass_ttl.
	MinPassTTL = time.Minute
	MaxPassTTL = 24 * time.Hour

	// MinHeaderBytes is the least server.max_header_bytes and
	// egress.max_header_bytes: what real browsers and backends send.
	MinHeaderBytes = 4 << 10
	// MinResponseHeaderBytes and MaxResponseHeaderBytes bound
	// backend.max_response_header_bytes: a backend answer's header block.
	MinResponseHeaderBytes = 1 << 10
	MaxResponseHeaderBytes = 16 << 20
)

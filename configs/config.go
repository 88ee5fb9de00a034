// Package configs owns fedigate's configuration: the schema (these types),
// the built-in presets and defaults, loading a TOML file with positions, and
// validation that reports every fault as "file:line: what is wrong".
//
// No other package parses TOML. Every other package receives the typed,
// already validated section it needs (a *Config or one of its fields);
// a value returned by Load or Default is valid and is never re-checked.
// Example files for each preset (mastodon.toml, pleroma.toml, akkoma.toml)
// live beside this file and are embedded for `fedigate init`.
package configs

import (
	"net/netip"
	"time"
)

// Config is one complete, validated gateway configuration.
type Config struct {
	Preset    string    `toml:"preset"`
	Server    Server    `toml:"server"`
	TLS       TLS       `toml:"tls"`
	Backend   Backend   `toml:"backend"`
	RateLimit RateLimit `toml:"ratelimit"`
	Signup    Signup    `toml:"signup"`
	Egress    Egress    `toml:"egress"`
	Admin     Admin     `toml:"admin"`
	Log       Log       `toml:"log"`

	// Routes are filled by the preset; they are not read from TOML.
	Routes Routes `toml:"-"`
	// Source names where this config came from: a file path, or
	// BuiltinSource for the built-in default.
	Source string `toml:"-"`
}

// BuiltinSource is Config.Source when no file was read.
const BuiltinSource = "built-in default"

// Server is the [server] section: the HTTPS edge.
type Server struct {
	Listen            string         `toml:"listen"`
	RedirectListen    string         `toml:"redirect_listen"`
	HTTP3             bool           `toml:"http3"`
	Hosts             []string       `toml:"hosts"`
	TrustedProxies    []netip.Prefix `toml:"trusted_proxies"`
	ClientIPHeaders   []string       `toml:"client_ip_headers"`
	MaxRequestBody    int64          `toml:"max_request_body,size"`
	MaxHeaderBytes    int64          `toml:"max_header_bytes,size"`
	ReadHeaderTimeout time.Duration  `toml:"read_header_timeout"`
	IdleTimeout       time.Duration  `toml:"idle_timeout"`
	ShutdownTimeout   time.Duration  `toml:"shutdown_timeout"`
	HSTS              string         `toml:"hsts"`
}

// TLS is the [tls] section.
type TLS struct {
	Mode       string `toml:"mode"` // self-signed | files | acme
	StateDir   string `toml:"state_dir"`
	CertFile   string `toml:"cert_file"`
	KeyFile    string `toml:"key_file"`
	ACMEEmail  string `toml:"acme_email"`
	ACMECA     string `toml:"acme_ca"`
	ACMECARoot string `toml:"acme_ca_root"`
}

// TLS modes.
const (
	TLSSelfSigned = "self-signed"
	TLSFiles      = "files"
	TLSACME       = "acme"
)

// Backend is the [backend] section: where requests go.
type Backend struct {
	Web             string        `toml:"web"`       // absolute http(s) URL, no path
	Streaming       string        `toml:"streaming"` // "" = streaming goes to Web
	StaticRoot      string        `toml:"static_root"`
	EnvFile         string        `toml:"env_file"` // Mastodon's .env.production, read by doctor
	ConnectTimeout  time.Duration `toml:"connect_timeout"`
	ResponseTimeout time.Duration `toml:"response_timeout"` // time to the response headers; then 504
	// IdleTimeout is how long a backend connection may wait in the pool,
	// on every path to the backend; under Puma's persistent_timeout (20 s).
	IdleTimeout time.Duration `toml:"idle_timeout"`
	// MaxIdleConns bounds the idle connections kept to each backend.
	MaxIdleConns int `toml:"max_idle_conns"`
	// MaxResponseHeaderBytes bounds a backend answer's header block; over
	// it the answer is 502.
	MaxResponseHeaderBytes int64 `toml:"max_response_header_bytes,size"`
}

// RateLimit is the [ratelimit] section. Rules holds the preset's rules
// merged with the file's (a file rule replaces the preset rule of the same
// name); disabled rules are already removed.
type RateLimit struct {
	Store        string         `toml:"store"` // memory | redis
	RedisURL     string         `toml:"redis_url"`
	OnStoreError string         `toml:"on_store_error"` // allow | deny
	StoreTimeout time.Duration  `toml:"store_timeout"`  // longest a request waits on the store
	IPv6Prefix   int            `toml:"ipv6_prefix"`
	Exempt       []netip.Prefix `toml:"exempt"` // clients no rule counts
	Rules        []Rule         `toml:"rule"`
}

// Store kinds and store-error policies.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
	OnErrAllow  = "allow"
	OnErrDeny   = "deny"
)

// Rule is one [[ratelimit.rule]]: at most Limit matching requests per
// client in any window of Period.
type Rule struct {
	Name    string   `toml:"name"`
	Methods []string `toml:"methods"` // upper case; empty = any method
	// Paths are exact paths, or prefixes when they end in "*".
	Paths  []string      `toml:"paths"`
	Limit  int           `toml:"limit"`
	Period time.Duration `toml:"period"`
	// Unauthenticated: count only requests with no Authorization header
	// and no session cookie (Mastodon's "unauthenticated API" throttle).
	Unauthenticated bool           `toml:"unauthenticated"`
	Exempt          []netip.Prefix `toml:"exempt"`
	// Disabled drops a preset rule of the same name.
	Disabled bool `toml:"disabled"`
}

// Signup is the [signup] section: the sign-up gate.
type Signup struct {
	Gate          string        `toml:"gate"` // off | pow | hcaptcha | turnstile
	PowDifficulty int           `toml:"pow_difficulty"`
	PassTTL       time.Duration `toml:"pass_ttl"`
	API           string        `toml:"api"` // challenge | deny | allow
	SiteKey       string        `toml:"site_key"`
	Secret        string        `toml:"secret"`     // captcha secret; resolved from SecretEnv at load
	SecretEnv     string        `toml:"secret_env"` // name of the environment variable holding Secret
	VerifyURL     string        `toml:"verify_url"` // "" = the provider's siteverify
	VerifyTimeout time.Duration `toml:"verify_timeout"`
	// SecretFile holds the HMAC key for passes, shared by several gateways;
	// "" = state_dir/signup.key, created 0600.
	SecretFile     string        `toml:"secret_file"`
	SurgeThreshold int           `toml:"surge_threshold"` // 0 = surge lock-down off
	SurgeWindow    time.Duration `toml:"surge_window"`
	SurgeExtraBits int           `toml:"surge_extra_bits"`
	SurgeHold      time.Duration `toml:"surge_hold"`
}

// Sign-up gate kinds and API policies.
const (
	GateOff       = "off"
	GatePoW       = "pow"
	GateHCaptcha  = "hcaptcha"
	GateTurnstile = "turnstile"
	APIChallenge  = "challenge"
	APIDeny       = "deny"
	APIAllow      = "allow"
)

// Egress is the [egress] section: the forward proxy for the backend.
type Egress struct {
	Listen          string        `toml:"listen"`          // "" = no egress proxy
	Upstream        string        `toml:"upstream"`        // socks5://[user:pass@]host:port | direct
	HiddenUpstream  string        `toml:"hidden_upstream"` // socks5:// for .onion/.i2p; "" = refuse them
	DenyPrivate     bool          `toml:"deny_private"`
	Allow           []string      `toml:"allow"`        // host:port exceptions to DenyPrivate
	DenyDomains     []string      `toml:"deny_domains"` // "bad.example", "*.bad.example"
	ConnectTimeout  time.Duration `toml:"connect_timeout"`
	IdleTimeout     time.Duration `toml:"idle_timeout"`
	MaxConns        int           `toml:"max_conns"`
	MaxConnsPerHost int           `toml:"max_conns_per_host"`
	MaxHeaderBytes  int64         `toml:"max_header_bytes,size"`
	// Resolver: system (local resolver), doh (DNS-over-HTTPS through the
	// upstream) or upstream (names are handed to the SOCKS server).
	Resolver string `toml:"resolver"`
	DoHURL   string `toml:"doh_url"`
	ProbeURL string `toml:"probe_url"` // fetched through the upstream by doctor
}

// Egress resolvers and the literal "direct" upstream.
const (
	ResolverSystem   = "system"
	ResolverDoH      = "doh"
	ResolverUpstream = "upstream"
	UpstreamDirect   = "direct"
)

// Admin is the [admin] section: health and metrics.
type Admin struct {
	Listen      string `toml:"listen"` // "" = no admin listener
	AllowRemote bool   `toml:"allow_remote"`
}

// Log is the [log] section.
type Log struct {
	Format string `toml:"format"` // text | json
	Level  string `toml:"level"`  // debug | info | warn | error
}

// Routes describe how a preset's backend lays out its paths. They come from
// the preset only.
type Routes struct {
	// Streaming path prefixes go to Backend.Streaming (or Web when that is
	// empty), unbuffered, with websocket upgrades.
	Streaming []string
	// Static lists the path prefixes served from Backend.StaticRoot with
	// their response headers. A request under a prefix with OnlyStatic set
	// is answered 404 when the file is missing instead of going to the
	// backend. Other paths try a file under the root first (nginx's
	// try_files $uri @proxy) when TryFiles is true.
	Static   []StaticRoute
	TryFiles bool
	// SignupPages are GET paths of the sign-up form: shown after the
	// challenge. SignupPosts are the form's POST targets: need a pass.
	// APISignup is the API account-creation path ruled by Signup.API.
	SignupPages []string
	SignupPosts []string
	APISignup   string
	// GzipTypes are the media types compressed when the backend did not.
	GzipTypes []string
}

// StaticRoute is one static path prefix and its headers.
type StaticRoute struct {
	Prefix     string            // "/assets/", or an exact path like "/sw.js"
	Exact      bool              // Prefix is an exact path
	Headers    map[string]string // e.g. Cache-Control
	OnlyStatic bool              // 404 when missing, never the backend
}

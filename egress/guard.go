package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fedigate/fedigate/configs"
)

// Verdict is the guard's answer for one destination. Its String() is the
// log field and the metric label.
type Verdict uint8

// Verdicts, allowed first.
const (
	Allowed       Verdict = iota
	DeniedDomain          // in deny_domains
	DeniedPrivate         // resolves to a private, loopback, link-local... address
	DeniedOwn             // one of the gateway's own listeners
	DeniedHidden          // .onion / .i2p without hidden_upstream
	BadTarget             // not a host:port a proxy can reach
	ResolveFailed         // the name did not resolve
	UpstreamError         // the SOCKS upstream failed or refused
	LimitConns            // max_conns reached
	LimitHost             // max_conns_per_host reached for this destination
)

var verdictNames = [...]string{"allowed", "denied_domain", "denied_private", "denied_own", "denied_hidden",
	"bad_target", "resolve_failed", "upstream_error", "limit_conns", "limit_host"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Refusal is the error a refused destination gets: the public half is the
// verdict and a one-line reason; Cause is the private half, for the log.
type Refusal struct {
	Verdict Verdict
	Dest    string
	Reason  string
	Cause   error
}

func (r *Refusal) Error() string {
	if r.Cause != nil {
		return fmt.Sprintf("%s: %s: %s: %v", r.Dest, r.Verdict, r.Reason, r.Cause)
	}
	return fmt.Sprintf("%s: %s: %s", r.Dest, r.Verdict, r.Reason)
}

func (r *Refusal) Unwrap() error { return r.Cause }

// Resolver looks names up for the guard.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// guard decides where a connection may go. It is the one place that turns
// a requested host:port into the address that is dialled.
type guard struct {
	denyPrivate bool
	allow       map[string]bool // "host:port", host lower case, no trailing dot
	denyExact   map[string]bool
	denySuffix  []string // ".bad.example" for "*.bad.example"
	own         []netip.AddrPort
	localAddrs  func() []netip.Addr // addresses of this host, for wildcard own listeners
	resolver    Resolver            // nil = names go to the upstream unresolved
	hidden      bool                // a hidden_upstream is configured
}

func newGuard(cfg configs.Egress, own []netip.AddrPort, r Resolver) *guard {
	g := &guard{denyPrivate: cfg.DenyPrivate, allow: map[string]bool{}, denyExact: map[string]bool{},
		own: own, localAddrs: interfaceAddrs, resolver: r, hidden: cfg.HiddenUpstream != ""}
	for _, a := range cfg.Allow {
		if h, p, err := net.SplitHostPort(a); err == nil {
			g.allow[net.JoinHostPort(normalName(h), p)] = true
		}
	}
	for _, d := range cfg.DenyDomains {
		if rest, ok := strings.CutPrefix(d, "*."); ok {
			g.denySuffix = append(g.denySuffix, "."+normalName(rest))
		} else {
			g.denyExact[normalName(d)] = true
		}
	}
	return g
}

// target is a checked destination: either an address to dial, or (for
// hidden services and resolver = "upstream") a name the upstream resolves.
type target struct {
	addr   netip.AddrPort // valid when dialled by address
	name   string         // host name handed to the upstream when addr is not valid
	port   uint16
	hidden bool // goes to hidden_upstream
}

func (t target) String() string {
	if t.addr.IsValid() {
		return t.addr.String()
	}
	return net.JoinHostPort(t.name, strconv.Itoa(int(t.port)))
}

// check turns host:port into the target to dial, or a *Refusal. Every
// answer of a lookup is classified, and one denied answer refuses the
// whole name: picking a "good" answer among bad ones would let a hostile
// DNS server steer which one is used on a retry.
func (g *guard) check(ctx context.Context, hostport string) (target, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	if err != nil || perr != nil || port == 0 || host == "" {
		return target{}, &Refusal{Verdict: BadTarget, Dest: hostport, Reason: "want host:port"}
	}
	name := normalName(host)
	allowed := g.allow[net.JoinHostPort(name, portStr)]
	if a, err := netip.ParseAddr(name); err == nil { // "10.0.0.1." is the literal too
		if a.Zone() != "" {
			return target{}, &Refusal{Verdict: BadTarget, Dest: hostport, Reason: "zoned addresses are not reachable through the upstream"}
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		return target{addr: ap, port: uint16(port)}, g.classifyAddr(ap, allowed, hostport)
	}
	if !validName(name) {
		return target{}, &Refusal{Verdict: BadTarget, Dest: hostport, Reason: "not a host name"}
	}
	if numericTLD(name) {
		// "127.1", "0x7f.1", "2130706433": resolvers read these as
		// addresses (inet_aton), a SOCKS server among them. No real top
		// level domain is numeric.
		return target{}, &Refusal{Verdict: BadTarget, Dest: hostport, Reason: "a numeric host name is not a domain"}
	}
	if g.deniedDomain(name) {
		return target{}, &Refusal{Verdict: DeniedDomain, Dest: hostport, Reason: "the domain is in deny_domains"}
	}
	if strings.HasSuffix(name, ".onion") || strings.HasSuffix(name, ".i2p") {
		if !g.hidden {
			return target{}, &Refusal{Verdict: DeniedHidden, Dest: hostport, Reason: "hidden services need egress.hidden_upstream"}
		}
		return target{name: name, port: uint16(port), hidden: true}, nil
	}
	if g.resolver == nil {
		if g.denyPrivate && !allowed && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
			return target{}, &Refusal{Verdict: DeniedPrivate, Dest: hostport, Reason: "localhost"}
		}
		return target{name: name, port: uint16(port)}, nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", name)
	if err != nil || len(addrs) == 0 {
		return target{}, &Refusal{Verdict: ResolveFailed, Dest: hostport, Reason: "the name does not resolve", Cause: err}
	}
	var first netip.AddrPort
	for i, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		if err := g.classifyAddr(ap, allowed, hostport); err != nil {
			return target{}, err
		}
		if i == 0 {
			first = ap
		}
	}
	return target{addr: first, port: uint16(port)}, nil
}

func (g *guard) classifyAddr(ap netip.AddrPort, allowed bool, dest string) error {
	if g.isOwn(ap) {
		return &Refusal{Verdict: DeniedOwn, Dest: dest, Reason: "that is one of this gateway's own listeners"}
	}
	if g.denyPrivate && !allowed {
		if why := privateReason(ap.Addr()); why != "" {
			return &Refusal{Verdict: DeniedPrivate, Dest: dest, Reason: "resolves to " + ap.Addr().String() + " (" + why + ")"}
		}
	}
	return nil
}

func (g *guard) isOwn(ap netip.AddrPort) bool {
	for _, o := range g.own {
		if o.Port() != ap.Port() {
			continue
		}
		if o.Addr() == ap.Addr() {
			return true
		}
		if o.Addr().IsUnspecified() && (ap.Addr().IsLoopback() || ap.Addr().IsUnspecified() || slices.Contains(g.localAddrs(), ap.Addr())) {
			return true
		}
	}
	return false
}

func (g *guard) deniedDomain(name string) bool {
	if g.denyExact[name] {
		return true
	}
	for _, s := range g.denySuffix {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// normalName lower-cases a host name and drops one trailing dot.
func normalName(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func validName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// numericTLD: the last label is a number (decimal, or 0x hex).
func numericTLD(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		last = h
		if last == "" {
			return true
		}
		for i := 0; i < len(last); i++ {
			if !strings.ContainsRune("0123456789abcdef", rune(last[i])) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}

func interfaceAddrs() []netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

var errNoAddress = errors.New("no address")

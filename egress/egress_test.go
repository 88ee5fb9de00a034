package egress

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/fedigate/fedigate/internal/testenv"
)

func TestForwardLeavesThroughSOCKS(t *testing.T) {
	s := socks(t)
	dest := startDestination(t)
	_, purl, logs := startProxy(t, egressConfig("socks5://"+s.Addr, dest.addr), Options{})
	c := clientVia(purl)
	resp, err := c.Get("http://" + dest.addr + "/inbox?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "GET /inbox?x=1 " {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", "http://"+dest.addr+"/post", io.NopCloser(strings.NewReader(strings.Repeat("b", 100000))))
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "POST /post bbbb") || len(body) != len("POST /post ")+100000 {
		t.Fatalf("POST body not streamed whole: %d bytes", len(body))
	}
	if resp.Header.Get("X-Proxy-Authorization-Seen") != "" {
		t.Error("Proxy-Authorization reached the destination")
	}
	if resp.Header.Get("Proxy-Authenticate") != "" {
		t.Error("the destination's Proxy-Authenticate reached the client")
	}
	for _, p := range dest.seen() {
		if p != socksOut {
			t.Errorf("destination saw %s, want only the SOCKS server's %s", p, socksOut)
		}
	}
	if !strings.Contains(logs.String(), "method=POST dest="+dest.addr+" verdict=allowed resolved="+dest.addr) || strings.Contains(logs.String(), "c2VjcmV0") {
		t.Errorf("log:\n%s", logs.String())
	}
}

func TestConnectTunnelLeavesThroughSOCKS(t *testing.T) {
	s := socks(t)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	var peer string
	dst := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _, _ = net.SplitHostPort(r.RemoteAddr)
		io.WriteString(w, "tunnelled")
	}))
	dst.Listener = ln
	dst.StartTLS()
	defer dst.Close()
	_, purl, _ := startProxy(t, egressConfig("socks5://"+s.Addr, ln.Addr().String()), Options{})
	tr := dst.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(purl)
	tr.TLSClientConfig.ServerName = "127.0.0.1" // httptest's certificate names 127.0.0.1 only
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(dst.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tunnelled" || peer != socksOut {
		t.Fatalf("body %q from peer %s", body, peer)
	}
}

// With the upstream gone, requests fail and nothing reaches the destination.
func TestUpstreamDownNothingLeavesDirectly(t *testing.T) {
	s := socks(t)
	dest := startDestination(t)
	_, purl, _ := startProxy(t, egressConfig("socks5://"+s.Addr, dest.addr), Options{})
	c := clientVia(purl)
	resp, err := c.Get("http://" + dest.addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("before: %v", err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	s.Stop()
	before := dest.conns.Load()
	resp, err = clientVia(purl).Get("http://" + dest.addr + "/again")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("upstream down: %d, want 502", resp.StatusCode)
	}
	req, _ := http.NewRequest("CONNECT", purl.String(), nil)
	req.Host = dest.addr
	conn, _ := net.Dial("tcp", purl.Host)
	defer conn.Close()
	req.Write(conn)
	buf := make([]byte, 12)
	io.ReadFull(conn, buf)
	if !strings.Contains(string(buf), "502") {
		t.Errorf("CONNECT with upstream down: %q", buf)
	}
	if dest.conns.Load() != before {
		t.Error("a connection reached the destination without the upstream")
	}
}

// Every denied class is refused with 403 before any connection is made:
// the upstream here only counts, and must count zero.
func TestAttackDeniedDestinationsNeverDialled(t *testing.T) {
	up := startCounter(t)
	dns := startDNS(t, func(name string, _ int) []netip.Addr {
		switch name {
		case "private.test":
			return []netip.Addr{netip.MustParseAddr("10.0.0.5")}
		case "mixed.test":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")}
		case "mapped.test":
			return []netip.Addr{netip.MustParseAddr("::ffff:169.254.169.254")}
		case "loopback-mapped.test":
			return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}
		case "nat64.test":
			return []netip.Addr{netip.MustParseAddr("64:ff9b::7f00:1")}
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
		case "ula.test":
			return []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}
		case "cgnat.test":
			return []netip.Addr{netip.MustParseAddr("100.64.0.1")}
		case "own.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	cfg := egressConfig("socks5://" + up.ln.Addr().String())
	cfg.DenyDomains = []string{"blocked.example", "*.worse.example"}
	own := netip.MustParseAddrPort("127.0.0.1:8443")
	p, purl, logs := startProxy(t, cfg, Options{Resolver: dns.resolver(), OwnAddrs: []netip.AddrPort{own, netip.MustParseAddrPort("[::]:9180")}})
	for _, target := range []string{
		"127.0.0.1:80", "10.1.2.3:80", "172.16.0.1:80", "192.168.1.1:80", "100.64.0.1:80",
		"169.254.169.254:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "[::ffff:10.0.0.1]:80",
		"[64:ff9b::7f00:1]:80", "[64:ff9b::a00:1]:80", "[2002:7f00:1::]:80", "[fd00:ec2::254]:80",
		"[fe80::1]:80", "[ff02::1]:80", "0.0.0.0:80", "255.255.255.255:80", "224.0.0.1:80",
		"192.0.2.1:80", "198.18.0.1:80", "[2001:db8::1]:80", "[2001::1]:80",
		"private.test:80", "mixed.test:80", "mapped.test:80", "loopback-mapped.test:80", "nat64.test:80",
		"metadata.test:80", "ula.test:80", "cgnat.test:80", "own.test:8443", "Private.TEST.:80",
		"blocked.example:443", "BLOCKED.Example.:443", "a.b.worse.example:443",
		"127.0.0.1:8443", "8.8.8.8:9180",
		"0.0.0.0.:80", "127.0.0.1.:80", "127.1:80", "0x7f.1:80", "2130706433:80",
	} {
		t.Run(target, func(t *testing.T) {
			resp, err := clientVia(purl).Get("http://" + target + "/")
			if target == "8.8.8.8:9180" {
				// a wildcard own listener: only this host's addresses are it
				if err == nil {
					resp.Body.Close()
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d, want 403 (or 400 for a numeric name)", target, resp.StatusCode)
			}
		})
	}
	if _, err := p.DialContext(context.Background(), "tcp", "[::1]:9180"); err == nil {
		t.Error("own wildcard listener reachable through loopback")
	}
	if n := up.count.Load(); n != 1 {
		// exactly one: 8.8.8.8:9180 is public, so it is dialled (and fails)
		t.Errorf("the upstream was dialled %d times, want 1", n)
	}
	if !strings.Contains(logs.String(), "verdict=denied_private") || !strings.Contains(logs.String(), "verdict=denied_domain") || !strings.Contains(logs.String(), "verdict=denied_own") {
		t.Errorf("log lacks verdicts:\n%s", logs.String())
	}
}

// A name that answers a public address first and loopback later: the
// checked address is the one dialled, and the later lookup is refused.
func TestAttackDNSRebinding(t *testing.T) {
	s := socks(t)
	dest := startDestination(t)
	_, port, _ := net.SplitHostPort(dest.addr)
	public := startDNS(t, func(name string, n int) []netip.Addr {
		if n <= 2 {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.3")}
	})
	p, _, _ := startProxy(t, egressConfig("socks5://"+s.Addr), Options{Resolver: public.resolver()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, target, err := p.dial(ctx, "tcp", "rebind.test:"+port)
	if target.addr.Addr() != netip.MustParseAddr("93.184.216.34") {
		t.Fatalf("dialled %v (err %v), want the checked public address", target, err)
	}
	_, _, err = p.dial(context.Background(), "tcp", "rebind.test:"+port)
	if code, v, _ := statusOf(err); code != 403 || v != DeniedPrivate {
		t.Fatalf("second lookup (loopback): %d %v", code, v)
	}
	if len(dest.seen()) != 0 {
		t.Error("the rebinding name reached the loopback destination")
	}
}

func TestAllowOpensOnePrivateDestination(t *testing.T) {
	s := socks(t)
	dest := startDestination(t)
	other := startDestination(t)
	_, purl, _ := startProxy(t, egressConfig("socks5://"+s.Addr, dest.addr), Options{})
	for addr, want := range map[string]int{dest.addr: 200, other.addr: 403} {
		resp, err := clientVia(purl).Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", addr, resp.StatusCode, want)
		}
	}
}

func TestLimitsAnswer503AtOnce(t *testing.T) {
	s := socks(t)
	dest := startDestination(t)
	cfg := egressConfig("socks5://"+s.Addr, dest.addr)
	cfg.MaxConns, cfg.MaxConnsPerHost = 2, 1
	_, purl, _ := startProxy(t, cfg, Options{})
	// one tunnel held open fills the destination host's only slot
	conn, err := net.Dial("tcp", purl.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "CONNECT "+dest.addr+" HTTP/1.1\r\nHost: "+dest.addr+"\r\n\r\n")
	buf := make([]byte, 39)
	if _, err := io.ReadFull(conn, buf); err != nil || !strings.Contains(string(buf), "200") {
		t.Fatalf("tunnel: %q %v", buf, err)
	}
	start := time.Now()
	resp, err := clientVia(purl).Get("http://" + dest.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || time.Since(start) > time.Second || resp.Header.Get("Retry-After") == "" {
		t.Errorf("per-host cap: %d after %v", resp.StatusCode, time.Since(start))
	}
}

func TestHiddenServices(t *testing.T) {
	s := socks(t)
	_, purl, _ := startProxy(t, egressConfig("socks5://"+s.Addr), Options{})
	resp, err := clientVia(purl).Get("http://exampleonionaddress.onion/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf(".onion without hidden_upstream: %d", resp.StatusCode)
	}
	tor := startCounter(t)
	cfg := egressConfig("socks5://" + s.Addr)
	cfg.HiddenUpstream = "socks5://" + tor.ln.Addr().String()
	_, purl, _ = startProxy(t, cfg, Options{})
	resp, err = clientVia(purl).Get("http://exampleonionaddress.onion/")
	if err == nil {
		resp.Body.Close()
	}
	if tor.count.Load() != 1 {
		t.Errorf(".onion did not go to hidden_upstream (%d connections)", tor.count.Load())
	}
}

func TestNotAProxyRequest(t *testing.T) {
	s := socks(t)
	_, purl, _ := startProxy(t, egressConfig("socks5://"+s.Addr), Options{})
	resp, err := http.Get(purl.String() + "/just/a/path")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("origin-form request: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", purl.String()+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 80<<10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 431 {
		t.Errorf("huge header: %d", resp.StatusCode)
	}
}

// A SOCKS server with username and password: dante-server (sockd) with
// socksmethod username, leaving from socksOut.
func TestSOCKSWithPassword(t *testing.T) {
	d := testenv.Dante(t, socksOut, "warp", "s3cret")
	dest := startDestination(t)
	p, purl, logs := startProxy(t, egressConfig("socks5://warp:s3cret@"+d.Addr, dest.addr), Options{})
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("Ready against dante with a password: %v", err)
	}
	resp, err := clientVia(purl).Get("http://" + dest.addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with the right password: %v %v\ndante:\n%s", resp, err, d.Output())
	}
	resp.Body.Close()
	if seen := dest.seen(); len(seen) != 1 || seen[0] != socksOut {
		t.Errorf("destination saw %v, want only dante's %s", seen, socksOut)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the upstream password reached the log:\n%s", logs.String())
	}
	before := dest.conns.Load()
	_, purl, _ = startProxy(t, egressConfig("socks5://warp:wrong@"+d.Addr, dest.addr), Options{})
	resp, err = clientVia(purl).Get("http://" + dest.addr + "/")
	if err != nil || resp.StatusCode != 502 {
		t.Fatalf("with a wrong password: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := dest.conns.Load(); n != before {
		t.Errorf("a refused SOCKS login still reached the destination (%d new connections)", n-before)
	}
}

// Mastodon's HTTP client (http.rb) and curl through the egress.
func TestRealClients(t *testing.T) {
	ruby := testenv.Binary(t, "ruby", "ruby-http")
	curl := testenv.Binary(t, "curl", "curl")
	s := socks(t)
	dest := startDestination(t)
	_, purl, _ := startProxy(t, egressConfig("socks5://"+s.Addr, dest.addr), Options{})
	host, port, _ := net.SplitHostPort(purl.Host)
	script := `require "http"; puts HTTP.via("` + host + `", ` + port + `).get("http://` + dest.addr + `/from-ruby").to_s`
	out, err := exec.Command(ruby, "-e", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "GET /from-ruby") {
		t.Fatalf("http.rb: %v %s", err, out)
	}
	out, err = exec.Command(curl, "-sS", "-x", purl.String(), "http://"+dest.addr+"/from-curl").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "GET /from-curl") {
		t.Fatalf("curl: %v %s", err, out)
	}
	out, _ = exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", purl.String(), "http://127.0.0.1:1/").CombinedOutput()
	if string(out) != "403" {
		t.Errorf("curl to loopback: %s", out)
	}
	for _, p := range dest.seen() {
		if p != socksOut {
			t.Errorf("destination saw %s", p)
		}
	}
}

// The DoH resolver's lookups travel through the SOCKS upstream.
func TestDoHResolverThroughUpstream(t *testing.T) {
	s := socks(t)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	var peer string
	doh := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _, _ = net.SplitHostPort(r.RemoteAddr)
		answerDoH(t, w, r, netip.MustParseAddr("93.184.216.34"))
	}))
	doh.Listener = ln
	doh.StartTLS()
	defer doh.Close()
	p, _, _ := startProxy(t, egressConfig("socks5://"+s.Addr), Options{})
	tr := doh.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return p.up.dial(ctx, addr) }
	tr.TLSClientConfig.ServerName = "127.0.0.1"
	r := &DoHResolver{URL: doh.URL + "/dns-query", Client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
	addrs, err := r.LookupNetIP(context.Background(), "ip", "social.example")
	if err != nil || len(addrs) == 0 || addrs[0] != netip.MustParseAddr("93.184.216.34") {
		t.Fatalf("lookup: %v %v", addrs, err)
	}
	if peer != socksOut {
		t.Errorf("the DoH server saw %s, want the SOCKS server's %s", peer, socksOut)
	}
}

func TestReady(t *testing.T) {
	s := socks(t)
	p, _, _ := startProxy(t, egressConfig("socks5://"+s.Addr), Options{})
	if err := p.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := p.Ready(context.Background()); err == nil {
		t.Fatal("ready with the upstream down")
	}
}

// answerDoH answers one RFC 8484 POST with addr for A (or AAAA) questions.
func answerDoH(t *testing.T, w http.ResponseWriter, r *http.Request, addr netip.Addr) {
	raw, _ := io.ReadAll(r.Body)
	var q dnsmessage.Message
	if r.Header.Get("Content-Type") != "application/dns-message" || q.Unpack(raw) != nil || len(q.Questions) != 1 {
		http.Error(w, "bad query", 400)
		return
	}
	resp := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true}, Questions: q.Questions}
	if q.Questions[0].Type == dnsmessage.TypeA {
		resp.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
			Body:   &dnsmessage.AResource{A: addr.As4()},
		}}
	}
	out, _ := resp.Pack()
	w.Header().Set("Content-Type", "application/dns-message")
	w.Write(out)
}

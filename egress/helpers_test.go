package egress

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// socksOut is the address microsocks connects out from in these tests.
const socksOut = "127.0.0.2"

// destination is an HTTP server on 127.0.0.3 that records who connected.
type destination struct {
	addr  string
	mu    sync.Mutex
	peers []string
	conns atomic.Int64
}

func (d *destination) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.peers...)
}

func startDestination(t testing.TB) *destination {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &destination{addr: ln.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			d.mu.Lock()
			d.peers = append(d.peers, host)
			d.mu.Unlock()
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Proxy-Authorization-Seen", r.Header.Get("Proxy-Authorization"))
			w.Header().Set("Proxy-Authenticate", `Basic realm="destination"`)
			io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				d.conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

// counter is a TCP listener that only counts connections: an upstream or
// destination that must never be reached.
type counter struct {
	ln    net.Listener
	count atomic.Int64
}

func startCounter(t testing.TB) *counter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{ln: ln}
	testenv.Serve(t, ln, func(conn net.Conn) { c.count.Add(1); conn.Close() })
	return c
}

func egressConfig(upstream string, allow ...string) configs.Egress {
	c, _ := configs.Default(configs.PresetMastodon)
	e := c.Egress
	e.Listen = "127.0.0.1:0"
	e.Upstream = upstream
	e.Allow = allow
	e.ConnectTimeout = 3 * time.Second
	return e
}

// logBuffer captures slog lines.
type logBuffer = testenv.LogBuffer

// startProxy serves a Proxy on loopback and returns it with its URL.
func startProxy(t testing.TB, cfg configs.Egress, opts Options) (*Proxy, *url.URL, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	u, _ := url.Parse("http://" + ln.Addr().String())
	return p, u, logs
}

// clientVia is an http.Client that uses the egress as its proxy.
func clientVia(proxyURL *url.URL) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
}

func socks(t testing.TB) *testenv.Process {
	t.Helper()
	return testenv.Microsocks(t, socksOut)
}

// dnsServer answers A/AAAA queries over UDP on loopback from a function,
// so a test controls every answer (a rebinding name among them).
type dnsServer struct {
	addr    string
	answer  func(name string, n int) []netip.Addr // n counts queries per name
	mu      sync.Mutex
	queries map[string]int
}

func startDNS(t testing.TB, answer func(name string, n int) []netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{addr: pc.LocalAddr().String(), answer: answer, queries: map[string]int{}}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dnsmessage.Message
			if q.Unpack(buf[:n]) != nil || len(q.Questions) != 1 {
				continue
			}
			name := strings.TrimSuffix(q.Questions[0].Name.String(), ".")
			s.mu.Lock()
			s.queries[name]++
			count := s.queries[name]
			s.mu.Unlock()
			resp := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true, RecursionAvailable: true}, Questions: q.Questions}
			for _, a := range answer(name, count) {
				hdr := dnsmessage.ResourceHeader{Name: q.Questions[0].Name, Class: dnsmessage.ClassINET, TTL: 0}
				if a.Is4() && q.Questions[0].Type == dnsmessage.TypeA {
					hdr.Type = dnsmessage.TypeA
					resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AResource{A: a.As4()}})
				} else if a.Is6() && q.Questions[0].Type == dnsmessage.TypeAAAA {
					hdr.Type = dnsmessage.TypeAAAA
					resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
				}
			}
			out, _ := resp.Pack()
			pc.WriteTo(out, from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return s
}

// resolver is a real Go resolver that asks s.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.addr)
	}}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

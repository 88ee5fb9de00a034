package egress

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/fedigate/fedigate/internal/testenv"
)

func BenchmarkClassify(b *testing.B) {
	addrs := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:4700::1"), netip.MustParseAddr("64:ff9b::5db8:d822")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if privateReason(addrs[i%len(addrs)]) != "" {
			b.Fatal("public address refused")
		}
		i++
	}
}

// sink is a TCP server on 127.0.0.3 that discards what it reads and
// answers a one-byte ping with a byte.
func sink(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		b.Fatal(err)
	}
	testenv.Serve(b, ln, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n == 1 {
				c.Write(buf[:1])
			}
			if err != nil {
				return
			}
		}
	})
	return ln.Addr().String()
}

// connectVia opens a CONNECT tunnel through the egress at proxyAddr.
func connectVia(b *testing.B, proxyAddr, dest string) net.Conn {
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		b.Fatal(err)
	}
	io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n")
	buf := make([]byte, 39)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf[9:12]) != "200" {
		b.Fatalf("CONNECT: %q %v", buf, err)
	}
	return c
}

const bulk = 64 << 20

func pump(b *testing.B, c net.Conn) {
	chunk := make([]byte, 256<<10)
	b.SetBytes(bulk)
	for sent := 0; sent < bulk; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBulkThroughEgress and BenchmarkBulkStraightToSOCKS compare a
// 64 MiB upload through fedigate -> microsocks with one straight to it.
func BenchmarkBulkThroughEgress(b *testing.B) {
	s := socks(b)
	dest := sink(b)
	_, purl, _ := startProxy(b, egressConfig("socks5://"+s.Addr, dest), Options{Logger: quietLog()})
	b.ReportAllocs()
	for b.Loop() {
		c := connectVia(b, purl.Host, dest)
		pump(b, c)
		c.Close()
	}
}

func BenchmarkBulkStraightToSOCKS(b *testing.B) {
	s := socks(b)
	dest := sink(b)
	d, _ := proxy.SOCKS5("tcp", s.Addr, nil, &net.Dialer{Timeout: time.Second})
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.Dial("tcp", dest)
		if err != nil {
			b.Fatal(err)
		}
		pump(b, c)
		c.Close()
	}
}

// BenchmarkNewTunnel: one CONNECT tunnel opened, pinged once, closed.
func BenchmarkNewTunnel(b *testing.B) {
	s := socks(b)
	dest := sink(b)
	_, purl, _ := startProxy(b, egressConfig("socks5://"+s.Addr, dest), Options{Logger: quietLog()})
	b.ReportAllocs()
	for b.Loop() {
		c := connectVia(b, purl.Host, dest)
		c.Write([]byte{1})
		c.Read(make([]byte, 1))
		c.Close()
	}
}

// BenchmarkGuardedDial is the added latency of guard + SOCKS per dial.
func BenchmarkGuardedDial(b *testing.B) {
	s := socks(b)
	dest := sink(b)
	p, _, _ := startProxy(b, egressConfig("socks5://"+s.Addr, dest), Options{Logger: quietLog()})
	b.ReportAllocs()
	for b.Loop() {
		c, err := p.DialContext(context.Background(), "tcp", dest)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkForwardRequest and BenchmarkRequestStraightToDestination give
// the latency the egress adds to one absolute-URI GET (kept-alive client
// and upstream connections on both sides, like a busy backend's).
func BenchmarkForwardRequest(b *testing.B) {
	s := socks(b)
	dest := startDestination(b)
	_, purl, _ := startProxy(b, egressConfig("socks5://"+s.Addr, dest.addr), Options{Logger: quietLog()})
	benchGet(b, clientVia(purl), "http://"+dest.addr+"/inbox")
}

func BenchmarkRequestStraightToDestination(b *testing.B) {
	dest := startDestination(b)
	benchGet(b, &http.Client{Transport: &http.Transport{}}, "http://"+dest.addr+"/inbox")
}

func benchGet(b *testing.B, c *http.Client, url string) {
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

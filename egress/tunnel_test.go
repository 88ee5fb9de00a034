package egress

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

// Tunnel lifetime and the limits: half-close, idle timeout, a silent
// upstream, max_conns.
// The client half-closes its side of a CONNECT tunnel; the destination
// reads to EOF and still answers through the tunnel. The upstream is dante:
// microsocks closes both directions at the first EOF.
func TestConnectHalfClose(t *testing.T) {
	d := testenv.Dante(t, socksOut, "warp", "s3cret")
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d", n)
	}()
	_, purl, _ := startProxy(t, egressConfig("socks5://warp:s3cret@"+d.Addr, ln.Addr().String()), Options{})
	conn, err := net.Dial("tcp", purl.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "CONNECT "+ln.Addr().String()+" HTTP/1.1\r\nHost: "+ln.Addr().String()+"\r\n\r\n")
	buf := make([]byte, 39)
	if _, err := io.ReadFull(conn, buf); err != nil || !strings.Contains(string(buf), "200") {
		t.Fatalf("tunnel: %q %v", buf, err)
	}
	io.WriteString(conn, strings.Repeat("x", 100000))
	conn.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(conn)
	if string(reply) != "got 100000" {
		t.Fatalf("after half-close: %q %v", reply, err)
	}
}

// A tunnel in which nothing moves is closed after idle_timeout (at most
// twice it), so a stalled peer cannot hold a connection slot forever.
func TestConnectIdleTimeout(t *testing.T) {
	s := socks(t)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := egressConfig("socks5://"+s.Addr, ln.Addr().String())
	cfg.IdleTimeout = 300 * time.Millisecond
	_, purl, _ := startProxy(t, cfg, Options{})
	conn, err := net.Dial("tcp", purl.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "CONNECT "+ln.Addr().String()+" HTTP/1.1\r\nHost: "+ln.Addr().String()+"\r\n\r\n")
	buf := make([]byte, 39)
	if _, err := io.ReadFull(conn, buf); err != nil || !strings.Contains(string(buf), "200") {
		t.Fatalf("tunnel: %q %v", buf, err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != io.EOF {
		t.Fatalf("idle tunnel: %v, want EOF", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("idle tunnel closed after %v, want about 300-600ms", d)
	}
}

// A SOCKS upstream that accepts and then says nothing: the request ends
// with 504 after connect_timeout instead of hanging.
func TestSilentUpstreamTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	cfg := egressConfig("socks5://" + ln.Addr().String())
	cfg.ConnectTimeout = 300 * time.Millisecond
	_, purl, _ := startProxy(t, cfg, Options{})
	start := time.Now()
	resp, err := clientVia(purl).Get("http://93.184.216.34/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 3*time.Second {
		t.Errorf("silent upstream: %d after %v, want 504 after about 300ms", resp.StatusCode, time.Since(start))
	}
}

// max_conns counts every destination: with the one slot held by a tunnel,
// a request to another host gets 503 at once.
func TestMaxConnsAnswers503AtOnce(t *testing.T) {
	s := socks(t)
	dest := startDestination(t)
	other := startDestination(t)
	cfg := egressConfig("socks5://"+s.Addr, dest.addr, other.addr)
	cfg.MaxConns, cfg.MaxConnsPerHost = 1, 1
	_, purl, logs := startProxy(t, cfg, Options{})
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
	before := other.conns.Load()
	start := time.Now()
	resp, err := clientVia(purl).Get("http://" + other.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || time.Since(start) > time.Second {
		t.Errorf("max_conns: %d after %v", resp.StatusCode, time.Since(start))
	}
	if other.conns.Load() != before || !strings.Contains(logs.String(), "verdict=limit_conns") {
		t.Errorf("over max_conns: destination reached or no log line:\n%s", logs.String())
	}
}

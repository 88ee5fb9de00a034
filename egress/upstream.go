package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"golang.org/x/net/proxy"

	"github.com/fedigate/fedigate/configs"
)

// upstream dials through a SOCKS5 server, or directly when the config says
// "direct" in so many words. There is no fallback from one to the other.
type upstream struct {
	socks  proxy.ContextDialer // nil = direct
	addr   string              // the SOCKS server's host:port
	auth   *proxy.Auth
	direct *net.Dialer
}

func newUpstream(raw string, timeout time.Duration) (*upstream, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if raw == configs.UpstreamDirect {
		return &upstream{direct: d}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "socks5" && u.Scheme != "socks5h") || u.Hostname() == "" || u.Port() == "" {
		return nil, errors.New("want socks5://[user:pass@]host:port or \"direct\"")
	}
	up := &upstream{addr: u.Host, direct: d}
	if u.User != nil {
		pass, _ := u.User.Password()
		up.auth = &proxy.Auth{User: u.User.Username(), Password: pass}
	}
	s, err := proxy.SOCKS5("tcp", u.Host, up.auth, tcpCapture{d})
	if err != nil {
		return nil, err
	}
	cd, ok := s.(proxy.ContextDialer)
	if !ok {
		return nil, errors.New("SOCKS5 dialer cannot take a context")
	}
	up.socks = cd
	return up, nil
}

// dial connects to addr ("ip:port", or "name:port" that the SOCKS server
// resolves) through the upstream.
func (u *upstream) dial(ctx context.Context, addr string) (net.Conn, error) {
	if u.socks == nil {
		return u.direct.DialContext(ctx, "tcp", addr)
	}
	slot := &tcpSlot{}
	c, err := u.socks.DialContext(context.WithValue(ctx, tcpSlot{}, slot), "tcp", addr)
	if err != nil || slot.tcp == nil {
		return c, err
	}
	return &socksConn{Conn: c, tcp: slot.tcp}, nil
}

// socksConn is a connection through the SOCKS server that keeps the TCP
// connection under it. After the handshake the SOCKS connection passes
// bytes through unchanged, so the tunnel can half-close (CloseWrite) and
// splice on the TCP connection itself.
type socksConn struct {
	net.Conn
	tcp *net.TCPConn
}

func (c *socksConn) CloseWrite() error { return c.tcp.CloseWrite() }

// tcpSlot receives, through the dial's context, the TCP connection the
// SOCKS dialer made; it is also its own context key.
type tcpSlot struct{ tcp *net.TCPConn }

// tcpCapture is the SOCKS dialer's forward dialer: it records the TCP
// connection in the context's tcpSlot.
type tcpCapture struct{ d *net.Dialer }

func (f tcpCapture) Dial(network, addr string) (net.Conn, error) {
	return f.DialContext(context.Background(), network, addr)
}

func (f tcpCapture) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := f.d.DialContext(ctx, network, addr)
	if slot, ok := ctx.Value(tcpSlot{}).(*tcpSlot); ok && err == nil {
		slot.tcp, _ = c.(*net.TCPConn)
	}
	return c, err
}

// rawTCP is the TCP connection under c, or nil.
func rawTCP(c net.Conn) *net.TCPConn {
	switch c := c.(type) {
	case *net.TCPConn:
		return c
	case *socksConn:
		return c.tcp
	}
	return nil
}

// ready checks that the SOCKS server answers a greeting.
func (u *upstream) ready(ctx context.Context) error {
	if u.socks == nil {
		return nil
	}
	c, err := u.direct.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return fmt.Errorf("SOCKS upstream %s: %w", u.addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	greeting := []byte{5, 1, 0} // version 5, one method: no authentication
	if u.auth != nil {
		greeting = []byte{5, 1, 2} // username/password
	}
	if _, err := c.Write(greeting); err != nil {
		return fmt.Errorf("SOCKS upstream %s: %w", u.addr, err)
	}
	var reply [2]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return fmt.Errorf("SOCKS upstream %s does not answer a SOCKS5 greeting: %w", u.addr, err)
	}
	if reply[0] != 5 || reply[1] != greeting[2] {
		return fmt.Errorf("SOCKS upstream %s refused the method (reply %x)", u.addr, reply)
	}
	return nil
}

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
	s, err := proxy.SOCKS5("tcp", u.Host, up.auth, d)
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
	return u.socks.DialContext(ctx, "tcp", addr)
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

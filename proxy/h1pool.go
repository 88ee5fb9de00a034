package proxy

import (
	"bufio"
	"context"
	"net"
	"strings"
	"time"

	"github.com/fedigate/fedigate/configs"
)

func newH1Client(target *httpTarget, b configs.Backend, c *chain) *h1Client {
	host, port, err := net.SplitHostPort(target.host)
	if err != nil {
		host, port = target.host, "80"
	}
	maxHeader := b.MaxResponseHeaderBytes
	if maxHeader <= 0 {
		maxHeader = -1
	}
	return &h1Client{
		addr:      net.JoinHostPort(strings.Trim(host, "[]"), port),
		host:      target.host,
		dialer:    net.Dialer{Timeout: b.ConnectTimeout, KeepAlive: 30 * time.Second},
		timeout:   b.ResponseTimeout,
		idleTime:  b.IdleTimeout,
		maxIdle:   b.MaxIdleConns,
		maxHeader: maxHeader,
		log:       c.log,
		c:         c,
	}
}

func (c *h1Client) dial(ctx context.Context) (*h1Conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	pc := &h1Conn{nc: nc, bw: bufio.NewWriterSize(nc, 4<<10)}
	pc.lr = limitReader{nc: nc, left: -1}
	pc.br = bufio.NewReaderSize(&pc.lr, 8<<10)
	pc.peek.init(nc)
	return pc, nil
}

// get takes the most recently used idle connection that is still in
// step with its requests, or nil.
func (c *h1Client) get() *h1Conn {
	for {
		pc, stale := c.pop()
		for _, s := range stale {
			_ = s.nc.Close()
		}
		// Bytes nobody asked for (a stray answer, or the backend closing)
		// arrived while it was idle: the connection is out of step with
		// its requests and is never reused, as http.Transport refuses it.
		if pc != nil && !pc.rdl.IsZero() && !time.Now().Before(pc.rdl) {
			pc.setReadDeadline(time.Time{}) // past: the look below would fail on it
		}
		if pc == nil || (pc.br.Buffered() == 0 && !pc.peek.readable()) {
			return pc
		}
		_ = pc.nc.Close()
	}
}

// pop takes the most recently used idle connection, and those too old.
func (c *h1Client) pop() (pc *h1Conn, stale []*h1Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := len(c.idle); n > 0 && pc == nil; n-- {
		pc = c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		if time.Since(pc.idleAt) >= c.idleTime {
			stale, pc = append(stale, pc), nil
		}
	}
	return pc, stale
}

// put returns pc to the pool when reuse is true and there is room, and
// closes it otherwise.
func (c *h1Client) put(pc *h1Conn, reuse bool) {
	if reuse {
		c.mu.Lock()
		if !c.closed && len(c.idle) < c.maxIdle {
			pc.idleAt = time.Now()
			c.idle = append(c.idle, pc)
			if c.reaper == nil {
				c.reaper = time.AfterFunc(c.idleTime/2, c.reap)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	_ = pc.nc.Close()
}

// reap closes the connections idle for longer than idleTime, so none
// lingers half-closed after the backend dropped it; it runs while the
// pool has idle connections.
func (c *h1Client) reap() {
	c.mu.Lock()
	n := 0 // idle is oldest first
	for n < len(c.idle) && time.Since(c.idle[n].idleAt) >= c.idleTime {
		n++
	}
	old := append([]*h1Conn(nil), c.idle[:n]...)
	c.idle = append(c.idle[:0], c.idle[n:]...)
	clear(c.idle[len(c.idle):cap(c.idle)])
	if len(c.idle) > 0 && c.reaper != nil {
		c.reaper.Reset(c.idleTime / 2)
	} else {
		c.reaper = nil
	}
	c.mu.Unlock()
	for _, pc := range old {
		_ = pc.nc.Close()
	}
}

// closeIdle closes the idle connections; the connections of requests still
// running are closed when they end.
func (c *h1Client) closeIdle() {
	c.mu.Lock()
	c.closed = true
	idle := c.idle
	c.idle = nil
	if c.reaper != nil {
		c.reaper.Stop()
		c.reaper = nil
	}
	c.mu.Unlock()
	for _, pc := range idle {
		_ = pc.nc.Close()
	}
}

package proxy

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// h1IdleTime is how long a backend connection may wait in the pool. It is
// shorter than Puma's persistent_timeout (20 s), so the pool seldom hands
// out a connection the backend has already closed.
const h1IdleTime = 15 * time.Second

func newH1Client(target *url.URL, connectTimeout, responseTimeout time.Duration, maxIdle int, log *slog.Logger, onError func(http.ResponseWriter, *http.Request, error)) *h1Client {
	port := target.Port()
	if port == "" {
		port = "80"
	}
	c := &h1Client{
		addr:     net.JoinHostPort(target.Hostname(), port),
		host:     target.Host,
		dialer:   net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
		timeout:  responseTimeout,
		idleTime: h1IdleTime,
		maxIdle:  maxIdle,
		log:      log,
		onError:  onError,
	}
	c.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	return c
}

func (c *h1Client) dial(ctx context.Context) (*h1Conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 8<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

// get takes the most recently used idle connection, or nil.
func (c *h1Client) get() *h1Conn {
	var stale []*h1Conn
	c.mu.Lock()
	var pc *h1Conn
	for n := len(c.idle); n > 0 && pc == nil; n-- {
		pc = c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		if time.Since(pc.idleAt) >= c.idleTime {
			stale, pc = append(stale, pc), nil
		}
	}
	c.mu.Unlock()
	for _, s := range stale {
		_ = s.nc.Close()
	}
	return pc
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

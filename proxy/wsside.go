package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fedigate/fedigate/internal/copybuf"
)

// side is one connection of a websocket, with what waiting for it to be
// readable needs.
type side struct {
	c       net.Conn
	raw     syscall.RawConn    // the TCP socket under c; nil = reads wait in Read
	tls     bool               // c buffers records: drain it before waiting on raw
	dl      atomic.Int64       // the read deadline set by setReadDeadline (UnixNano); 0 = none
	peek    [2]byte            // [0] for ready, [1] for check: they may run at once
	isReady bool               // set by check
	ready   func(uintptr) bool // for RawConn.Read: wait until readable
	check   func(uintptr)      // for RawConn.Control: is it readable now?
}

func (sd *side) init(c net.Conn) {
	sd.c = c
	nc := c
	if tc, ok := c.(*tls.Conn); ok {
		sd.tls, nc = true, tc.NetConn()
	}
	if sc, ok := nc.(syscall.Conn); ok {
		sd.raw, _ = sc.SyscallConn()
	}
	sd.ready = func(fd uintptr) bool { return peekReady(fd, sd.peek[:1]) }
	sd.check = func(fd uintptr) { sd.isReady = peekReady(fd, sd.peek[1:]) }
}

// setReadDeadline sets the read deadline that the drains restore.
func (sd *side) setReadDeadline(t time.Time) {
	sd.dl.Store(t.UnixNano())
	_ = sd.c.SetReadDeadline(t)
}

// restoreDeadline puts back the deadline of setReadDeadline after a
// drain, also when one is set meanwhile.
func (sd *side) restoreDeadline() {
	for {
		d := sd.dl.Load()
		t := time.Time{}
		if d != 0 {
			t = time.Unix(0, d)
		}
		_ = sd.c.SetReadDeadline(t)
		if sd.dl.Load() == d {
			return
		}
	}
}

func (sd *side) expired() bool {
	d := sd.dl.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

func (sd *side) write(p []byte, timeout time.Duration) error {
	_ = sd.c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := sd.c.Write(p)
	return err
}

// readyNow reports, without waiting, whether a read would find bytes, an
// end or an error (a closed connection is ready: its read fails). A TLS
// side is asked after a drain, so only its socket can hold more.
func (sd *side) readyNow() bool {
	if sd.raw == nil {
		return true
	}
	if sd.raw.Control(sd.check) != nil {
		return true
	}
	return sd.isReady
}

// next waits until the side is readable, then takes what is there.
func (sd *side) next(deliver func([]byte) error) error {
	if sd.raw != nil {
		if err := sd.raw.Read(sd.ready); err != nil {
			return err
		}
	}
	return sd.take(deliver)
}

// take reads what a readable side holds into a pooled buffer and delivers
// it, then drains a TLS side.
func (sd *side) take(deliver func([]byte) error) error {
	bp := copybuf.Shared.Borrow()
	defer copybuf.Shared.Return(bp)
	n, err := sd.c.Read(*bp)
	if n > 0 {
		if werr := deliver((*bp)[:n]); werr != nil {
			return werr
		}
	}
	if err != nil || !sd.tls {
		return err
	}
	return sd.drain(*bp, deliver)
}

func (sd *side) drainPooled(deliver func([]byte) error) error {
	bp := copybuf.Shared.Borrow()
	defer copybuf.Shared.Return(bp)
	return sd.drain(*bp, deliver)
}

// drain delivers what a TLS side holds already (plaintext, whole records
// read with an earlier one) without waiting on the socket, so that
// waiting for the socket to be readable cannot miss data.
func (sd *side) drain(buf []byte, deliver func([]byte) error) error {
	_ = sd.c.SetReadDeadline(aLongTimeAgo)
	defer sd.restoreDeadline()
	for {
		n, err := sd.c.Read(buf)
		if n > 0 {
			if werr := deliver(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !sd.expired() {
				return nil
			}
			return err
		}
	}
}

//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// idlePeek looks, without blocking and without taking anything, whether a
// pooled connection has bytes to read (or its end) waiting: one recv with
// MSG_PEEK on the (non-blocking) socket, as the websocket proxy waits
// (peekReady).
type idlePeek struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool // built once: no allocation per look
	got  bool
	byte [1]byte
}

func (p *idlePeek) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.raw = raw
	p.fn = func(fd uintptr) bool {
		p.got = peekReady(fd, p.byte[:])
		return true
	}
}

// readable reports whether the connection has anything waiting to be
// read (or is closed or broken).
func (p *idlePeek) readable() bool {
	if p.raw == nil {
		return false
	}
	p.got = false
	if err := p.raw.Read(p.fn); err != nil {
		return true
	}
	return p.got
}

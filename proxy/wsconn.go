package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fedigate/fedigate/internal/copybuf"
)

// Close codes the edge sends a client itself (RFC 6455 section 7.4.1).
const (
	closeGoingAway     = 1001 // the edge shuts down
	closeInternalError = 1011 // the backend went away under an open websocket
)

// wsConn is one proxied websocket after its 101: pumpDown passes the
// backend's bytes to the client, pumpUp the client's to the backend; each
// waits for its side to be readable before it borrows a buffer. Only
// pumpDown writes to the client, so a close frame of the edge's own goes
// between two of the backend's frames (wsframe.go follows them).
//
// Ends: the client leaves (both are closed, nothing to tell); the backend
// closes after its own close frame (passed on as it is); the backend dies
// (the client gets 1011); the edge shuts down (the client gets 1001 and
// the backend's connection is closed). After pumpDown ends, the client
// has closeWait to answer before its connection is closed.
type wsConn struct {
	s          *streamRoute
	client     side
	backend    side
	slot       *streamSlot
	clientAddr netip.Addr
	path       string
	started    time.Time
	goingAway  atomic.Bool // set by the edge's shutdown
	clientGone atomic.Bool // pumpUp ended: nothing more to tell the client
	running    atomic.Int32
	up, down   atomic.Int64 // bytes passed on
	code       int          // close code sent to the client; 0 = none (pumpDown's, read after both ended)
	cause      error        // why the backend's side ended (pumpDown's)
}

func newWSConn(s *streamRoute, client, backend net.Conn, sl *streamSlot, addr netip.Addr, path string) *wsConn {
	ws := &wsConn{s: s, slot: sl, clientAddr: addr, path: path, started: time.Now()}
	ws.client.init(client)
	ws.backend.init(backend)
	return ws
}

// start runs the pumps; head (the 101 and the backend's first frames
// from frames on) goes to the client first, early (what the client sent
// after its upgrade request) to the backend.
func (ws *wsConn) start(head []byte, frames int, early []byte) {
	ws.running.Store(2)
	ws.s.c.edge.streams.addWS(ws.s.c.edge.streamCtx, ws)
	go ws.pumpDown(head, frames)
	go ws.pumpUp(early)
}

// shutdown wakes pumpDown, which tells the client 1001.
func (ws *wsConn) shutdown() {
	ws.goingAway.Store(true)
	ws.backend.setReadDeadline(aLongTimeAgo)
}

func (ws *wsConn) pumpDown(head []byte, frames int) {
	defer ws.done()
	var fr wsFrames
	fr.advance(head[frames:], false)
	deliver := func(p []byte) error {
		fr.advance(p, false)
		ws.down.Add(int64(len(p)))
		if err := ws.client.write(p, ws.s.send); err != nil {
			return clientGone{err}
		}
		return nil
	}
	err := ws.client.write(head, ws.s.send)
	if err != nil {
		err = clientGone{err}
	} else if ws.backend.tls {
		err = ws.backend.drainPooled(deliver)
	}
	for err == nil && !ws.goingAway.Load() {
		err = ws.backend.next(deliver)
	}
	var gone clientGone
	switch {
	case errors.As(err, &gone) || ws.clientGone.Load():
		_ = ws.client.c.Close()
	case ws.goingAway.Load():
		ws.code = closeGoingAway
		ws.finishFrame(&fr)
	case fr.closeSeen: // the backend closed the websocket itself
	default:
		ws.code, ws.cause = closeInternalError, err
	}
	_ = ws.backend.c.Close()
	if ws.code != 0 && fr.atBoundary() && !fr.closeSeen {
		code := ws.code
		_ = ws.client.write([]byte{0x88, 2, byte(code >> 8), byte(code)}, closeWait)
	} else {
		ws.code = 0
	}
	ws.client.setReadDeadline(time.Now().Add(closeWait))
}

// errBoundary ends finishFrame's copy at the end of a frame.
var errBoundary = errors.New("proxy: websocket frame boundary")

// finishFrame passes on the rest of the frame the backend is in the
// middle of, within closeWait, so a close frame can follow it.
func (ws *wsConn) finishFrame(fr *wsFrames) {
	if fr.atBoundary() {
		return
	}
	ws.backend.setReadDeadline(time.Now().Add(closeWait))
	var err error
	for err == nil {
		err = ws.backend.next(func(p []byte) error {
			if fr.atBoundary() {
				return errBoundary
			}
			k := fr.advance(p, true)
			if err := ws.client.write(p[:k], closeWait); err != nil {
				return err
			}
			if fr.atBoundary() {
				return errBoundary
			}
			return nil
		})
	}
}

func (ws *wsConn) pumpUp(early []byte) {
	defer ws.done()
	broken := false
	deliver := func(p []byte) error {
		if broken { // pumpDown tells the client
			return nil
		}
		ws.up.Add(int64(len(p)))
		if err := ws.backend.write(p, ws.s.send); err != nil {
			broken = true
			_ = ws.backend.c.Close()
		}
		return nil
	}
	var err error
	if len(early) > 0 {
		_ = deliver(early)
	}
	if ws.client.tls {
		err = ws.client.drainPooled(deliver)
	}
	for err == nil {
		err = ws.client.next(deliver)
	}
	// the client left, or pumpDown ended and gave it closeWait
	ws.clientGone.Store(true)
	_ = ws.backend.c.Close()
	_ = ws.client.c.Close()
}

// done frees the stream once both pumps ended, and logs its end.
func (ws *wsConn) done() {
	if ws.running.Add(-1) != 0 {
		return
	}
	ws.s.c.edge.streams.removeWS(ws)
	ws.slot.release()
	log := ws.s.c.log
	attrs := []slog.Attr{
		slog.String("client", ws.clientAddr.String()), slog.String("path", ws.path),
		slog.Duration("duration", time.Since(ws.started)),
		slog.Int64("bytes_up", ws.up.Load()), slog.Int64("bytes_down", ws.down.Load()),
		slog.Int("close_code", ws.code),
	}
	if ws.code == closeInternalError {
		attrs = append(attrs, slog.String("err", ws.cause.Error()))
		log.LogAttrs(context.Background(), slog.LevelWarn, "websocket backend gone", attrs...)
		return
	}
	log.LogAttrs(context.Background(), slog.LevelDebug, "websocket closed", attrs...)
}

// side is one connection of a websocket, with what waiting for it to be
// readable needs.
type side struct {
	c     net.Conn
	raw   syscall.RawConn // the TCP socket under c; nil = reads wait in Read
	tls   bool            // c buffers records: drain it before waiting on raw
	dl    atomic.Int64    // the read deadline set by setReadDeadline (UnixNano); 0 = none
	peek  [1]byte
	ready func(uintptr) bool
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
	sd.ready = func(fd uintptr) bool { return peekReady(fd, sd.peek[:]) }
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

// next waits until the side is readable, then reads what is there into a
// pooled buffer and delivers it.
func (sd *side) next(deliver func([]byte) error) error {
	if sd.raw != nil {
		if err := sd.raw.Read(sd.ready); err != nil {
			return err
		}
	}
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

package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Close codes the edge sends a client itself (RFC 6455 section 7.4.1).
const (
	closeGoingAway     = 1001 // the edge shuts down
	closeInternalError = 1011 // the backend went away under an open websocket
)

// wsConn is one proxied websocket after its 101, as two directions run
// in turns (wsturn.go): down passes the backend's bytes to the client, up
// the client's to the backend. An idle websocket holds no goroutine and
// no buffer: each direction waits for its side to be readable, and a
// turn borrows a buffer only while it passes data on. Only down writes to
// the client, so a close frame of the edge's own goes between two of the
// backend's frames (wsframe.go follows them).
//
// Ends: the client leaves (both are closed, nothing to tell); the backend
// closes after its own close frame (passed on as it is); the backend dies
// (the client gets 1011); the edge shuts down (the client gets 1001 and
// the backend's connection is closed). After down ends, the client has
// closeWait to answer before its connection is closed. Whoever closes a
// connection kicks the direction that reads it, so that it sees the end.
type wsConn struct {
	s          *streamRoute
	client     side
	backend    side
	down, up   turns
	slot       *streamSlot
	clientAddr netip.Addr
	path       string
	started    time.Time
	goingAway  atomic.Bool // set by the edge's shutdown
	clientGone atomic.Bool // up ended: nothing more to tell the client
	running    atomic.Int32
	bytesUp    atomic.Int64 // bytes passed on
	bytesDown  atomic.Int64
	toClient   func([]byte) error // down's delivery
	toBackend  func([]byte) error // up's delivery

	// down's own (its turns run one at a time)
	head   []byte // the 101 and the backend's first frames, until written
	frames int    // where head's frames start
	fr     wsFrames
	code   int   // close code sent to the client; 0 = none (read after both ended)
	cause  error // why the backend's side ended

	// up's own
	early  []byte // what the client sent after its upgrade request, until passed on
	begun  bool   // early passed on, the TLS side drained
	broken bool   // a write to the backend failed: the client's bytes are dropped
}

func newWSConn(s *streamRoute, client, backend net.Conn, sl *streamSlot, addr netip.Addr, path string) *wsConn {
	ws := &wsConn{s: s, slot: sl, clientAddr: addr, path: path, started: time.Now()}
	ws.client.init(client)
	ws.backend.init(backend)
	ws.down.run, ws.down.sd = ws.downTurn, &ws.backend
	ws.up.run, ws.up.sd = ws.upTurn, &ws.client
	ws.toClient, ws.toBackend = ws.deliverDown, ws.deliverUp
	return ws
}

// start runs the directions; head (the 101 and the backend's first frames
// from frames on) goes to the client first, early (what the client sent
// after its upgrade request) to the backend.
func (ws *wsConn) start(head []byte, frames int, early []byte) {
	ws.head, ws.frames, ws.early = head, frames, early
	ws.running.Store(2)
	ws.s.c.edge.streams.addWS(ws.s.c.edge.streamCtx, ws)
	ws.down.kick()
	ws.up.kick()
}

// shutdown has down tell the client 1001; the deadline wakes a read that
// waits for the rest of a TLS record.
func (ws *wsConn) shutdown() {
	ws.goingAway.Store(true)
	ws.backend.setReadDeadline(aLongTimeAgo)
	ws.down.kick()
}

func (ws *wsConn) closeClient() {
	_ = ws.client.c.Close()
	ws.up.kick()
}

func (ws *wsConn) closeBackend() {
	_ = ws.backend.c.Close()
	ws.down.kick()
}

func (ws *wsConn) deliverDown(p []byte) error {
	ws.fr.advance(p, false)
	ws.bytesDown.Add(int64(len(p)))
	if err := ws.client.write(p, ws.s.send); err != nil {
		return clientGone{err}
	}
	return nil
}

// downTurn passes on what the backend has sent; false once down ended.
func (ws *wsConn) downTurn() bool {
	var err error
	if head := ws.head; head != nil {
		ws.head = nil
		ws.fr.advance(head[ws.frames:], false)
		if err = ws.client.write(head, ws.s.send); err != nil {
			err = clientGone{err}
		} else if ws.backend.tls {
			err = ws.backend.drainPooled(ws.toClient)
		}
	}
	for err == nil && !ws.goingAway.Load() && ws.backend.readyNow() {
		err = ws.backend.take(ws.toClient)
	}
	if err == nil && !ws.goingAway.Load() {
		return true
	}
	ws.endDown(err)
	return false
}

// endDown ends down for err (nil: the edge shuts down): tells the client
// why when it is still there, closes the backend's side, and gives the
// client closeWait.
func (ws *wsConn) endDown(err error) {
	var gone clientGone
	switch {
	case errors.As(err, &gone) || ws.clientGone.Load():
		ws.closeClient()
	case ws.goingAway.Load():
		ws.code = closeGoingAway
		ws.finishFrame()
	case ws.fr.closeSeen: // the backend closed the websocket itself
	default:
		ws.code, ws.cause = closeInternalError, err
	}
	_ = ws.backend.c.Close()
	if ws.code != 0 && ws.fr.atBoundary() && !ws.fr.closeSeen {
		code := ws.code
		_ = ws.client.write([]byte{0x88, 2, byte(code >> 8), byte(code)}, closeWait)
	} else {
		ws.code = 0
	}
	ws.client.setReadDeadline(time.Now().Add(closeWait))
	time.AfterFunc(closeWait, ws.up.kick) // up sees the deadline passed
	ws.done()
}

// errBoundary ends finishFrame's copy at the end of a frame.
var errBoundary = errors.New("proxy: websocket frame boundary")

// finishFrame passes on the rest of the frame the backend is in the
// middle of, within closeWait, so a close frame can follow it.
func (ws *wsConn) finishFrame() {
	fr := &ws.fr
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

func (ws *wsConn) deliverUp(p []byte) error {
	if ws.broken { // down tells the client
		return nil
	}
	ws.bytesUp.Add(int64(len(p)))
	if err := ws.backend.write(p, ws.s.send); err != nil {
		ws.broken = true
		ws.closeBackend()
	}
	return nil
}

// upTurn passes on what the client has sent; false once up ended: the
// client left, or down ended and the client's closeWait has passed.
func (ws *wsConn) upTurn() bool {
	var err error
	if !ws.begun {
		ws.begun = true
		if len(ws.early) > 0 {
			_ = ws.deliverUp(ws.early)
		}
		ws.early = nil
		if ws.client.tls {
			err = ws.client.drainPooled(ws.toBackend)
		}
	}
	for err == nil && !ws.client.expired() && ws.client.readyNow() {
		err = ws.client.take(ws.toBackend)
	}
	if err == nil && !ws.client.expired() {
		return true
	}
	ws.clientGone.Store(true)
	ws.closeBackend()
	_ = ws.client.c.Close()
	ws.done()
	return false
}

// done frees the stream once both directions ended, and logs its end.
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
		slog.Int64("bytes_up", ws.bytesUp.Load()), slog.Int64("bytes_down", ws.bytesDown.Load()),
		slog.Int("close_code", ws.code),
	}
	if ws.code == closeInternalError {
		attrs = append(attrs, slog.String("err", ws.cause.Error()))
		log.LogAttrs(context.Background(), slog.LevelWarn, "websocket backend gone", attrs...)
		return
	}
	log.LogAttrs(context.Background(), slog.LevelDebug, "websocket closed", attrs...)
}

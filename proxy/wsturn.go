package proxy

import "sync/atomic"

// turns runs one direction of a websocket as a series of turns, each in a
// goroutine of its own that lives only while the turn passes data on: an
// idle direction holds no goroutine, only its wait for its side to become
// readable (wspoll_linux.go: one epoll for all websockets).
//
// kick asks for a turn: it starts one unless one runs, in which case that
// one is followed by another. So a direction never runs two turns at once,
// and a kick (readiness, the edge's shutdown, the other direction closing
// this one's connection, a timer) is never lost.
type turns struct {
	state atomic.Int32
	run   func() bool // one turn; false: the direction has ended
	sd    *side       // the side this direction reads
	poll  pollReg     // the side's registration with the poller
}

const (
	turnIdle    int32 = iota // waiting for a kick
	turnRunning              // a turn runs
	turnAgain                // a turn runs and was kicked meanwhile
	turnEnded                // the direction has ended
)

func (t *turns) kick() {
	for {
		switch t.state.Load() {
		case turnIdle:
			if t.state.CompareAndSwap(turnIdle, turnRunning) {
				go t.loop()
				return
			}
		case turnRunning:
			if t.state.CompareAndSwap(turnRunning, turnAgain) {
				return
			}
		default: // turnAgain, turnEnded
			return
		}
	}
}

// loop runs turns until one ends the direction or none is asked for. The
// wait is armed before the state goes idle: readiness reported in
// between is a kick of a running turn, so it is not lost.
func (t *turns) loop() {
	for {
		if !t.run() {
			t.state.Store(turnEnded)
			pollForget(&t.poll)
			return
		}
		t.wait()
		if t.state.CompareAndSwap(turnRunning, turnIdle) {
			return
		}
		t.state.Store(turnRunning)
	}
}

// wait arranges a kick once t's side is readable, has ended, or has
// failed: through the poller, or where there is none, from a goroutine
// parked until then. A side with no socket to wait on (not a
// syscall.Conn) is kicked at once: its turns wait in Read.
func (t *turns) wait() {
	switch {
	case t.sd.raw == nil:
		t.kick()
	case !pollArm(&t.poll, t):
		go func() {
			_ = t.sd.raw.Read(t.sd.ready)
			t.kick()
		}()
	}
}

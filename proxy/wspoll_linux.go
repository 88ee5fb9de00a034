package proxy

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
)

// wsPoller waits for the sockets of every idle websocket direction at
// once: one epoll instance and one goroutine for the process, so that an
// idle websocket holds no goroutine (and no goroutine stack) of its own.
// A socket is registered one-shot: epoll reports it once, and the turn
// that follows arms it again when it is done.
//
// Registrations are named by an id that is never reused, not by the file
// descriptor: closing a connection takes its socket out of the epoll set
// (the kernel does), and a late event for it finds no id and is dropped.
// The socket's descriptor is used only inside RawConn.Control, so it
// cannot be closed and reused meanwhile.
type wsPoller struct {
	fd     int
	mu     sync.Mutex
	last   uint64
	regs   map[uint64]*turns
	failed atomic.Bool // epoll_wait failed for good: directions wait in goroutines
}

// pollReg is a direction's registration; the zero value is none.
type pollReg struct {
	p     *wsPoller // the poller id is of
	id    uint64
	added bool  // in the epoll set (EPOLL_CTL_MOD re-arms it)
	err   error // of the last epoll_ctl, inside Control
}

var (
	pollOnce sync.Once
	poller   atomic.Pointer[wsPoller] // nil: no epoll; directions wait in goroutines
	pollLog  atomic.Pointer[slog.Logger]
)

// setPollLogger makes the edge's logger the poller's (one poller serves
// the process; the edge built last names the logger).
func setPollLogger(l *slog.Logger) { pollLog.Store(l) }

func pollLogger() *slog.Logger {
	if l := pollLog.Load(); l != nil {
		return l
	}
	return slog.Default()
}

func sharedPoller() *wsPoller {
	pollOnce.Do(func() {
		if p := newPoller(); p != nil {
			poller.Store(p)
		}
	})
	return poller.Load()
}

// newPoller opens an epoll instance and starts its goroutine; nil when
// there is none to be had.
func newPoller() *wsPoller {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		pollLogger().Warn("websockets: no epoll, idle websockets wait in goroutines", "err", err)
		return nil
	}
	p := &wsPoller{fd: fd, regs: map[uint64]*turns{}}
	go p.serve()
	return p
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// pollArm arms t's side to kick t once it is readable, has ended or has
// failed; false when it cannot (no epoll, a closed connection), and the
// caller waits otherwise.
func pollArm(r *pollReg, t *turns) bool {
	p := sharedPoller()
	if p == nil || p.failed.Load() {
		return false
	}
	if r.p != p {
		*r = pollReg{p: p}
	}
	if r.id == 0 {
		p.mu.Lock()
		p.last++
		r.id = p.last
		p.regs[r.id] = t
		p.mu.Unlock()
	}
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(uint32(r.id)), Pad: int32(uint32(r.id >> 32))}
	err := t.sd.raw.Control(func(fd uintptr) {
		op := syscall.EPOLL_CTL_MOD
		if !r.added {
			op = syscall.EPOLL_CTL_ADD
		}
		r.err = syscall.EpollCtl(p.fd, op, int(fd), &ev)
		if errors.Is(r.err, syscall.EEXIST) {
			r.err = syscall.EpollCtl(p.fd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		}
	})
	if err != nil || r.err != nil {
		return false
	}
	r.added = true
	// The poller may have failed since the check above: then this wait
	// is either seen here or kicked by fail (r is in regs already).
	return !p.failed.Load()
}

// pollForget drops the registration of a direction that has ended (its
// socket is closed: the kernel has taken it out of the epoll set).
func pollForget(r *pollReg) {
	p := r.p
	if r.id == 0 || p == nil {
		return
	}
	p.mu.Lock()
	delete(p.regs, r.id)
	p.mu.Unlock()
}

func (p *wsPoller) serve() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.fd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			p.fail(err)
			return
		}
		if p.failed.Load() {
			return // fail has woken every direction; none waits on p now
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if t := p.regs[uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32]; t != nil {
				t.kick()
			}
		}
		p.mu.Unlock()
	}
}

// fail ends the poller for good: every registered direction is kicked
// once (a turn with nothing to read is cheap), and its next wait, like
// every later one, parks a goroutine instead. No websocket is left
// waiting on an epoll nobody reads.
func (p *wsPoller) fail(err error) {
	pollLogger().Error("websockets: epoll_wait failed; idle websockets now wait in goroutines", "err", err)
	p.failed.Store(true)
	p.mu.Lock()
	for _, t := range p.regs {
		t.kick()
	}
	p.mu.Unlock()
}

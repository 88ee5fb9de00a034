// Package testenv starts the real servers fedigate's tests talk to (Redis,
// SOCKS5 servers, Chromium) on loopback, one per test or per package, and
// stops them when the test ends, and holds the few helpers every
// package's tests share (LogBuffer, Clock). It is for tests only.
//
// A missing program is a test failure, never a skip: the message names the
// Debian package and the command (./scripts/test) that installs it.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary returns the path of a program the test needs, or fails the test
// naming the Debian package that provides it.
func Binary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install the Debian package %q (./scripts/test installs everything the tests need)", name, debianPackage)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, and
// free for UDP too. It is drawn from below the kernel's ephemeral range
// (ip_local_port_range), so no outgoing connection of a test running in
// parallel, and no listener on port 0, can take it in the moment between
// this check and the test's own bind; and a process never gets one port
// twice.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	low, high := reservedRange()
	for range 200 {
		p := low + portRand.IntN(high-low+1)
		if portsGiven[p] || !bindable(p) {
			continue
		}
		portsGiven[p] = true
		return p
	}
	t.Fatalf("no free port in %d-%d after 200 tries", low, high)
	return 0
}

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{}
	portRand   = rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
)

// reservedRange is the band of ports tests draw from: the 12,000 below the
// ephemeral range's start, or 20000-32767 when it cannot be read or starts
// too low to leave room.
func reservedRange() (int, int) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low < 13024 {
		low = 32768
	}
	return low - 12000, low - 1
}

func bindable(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// Process is a server started for a test.
type Process struct {
	Cmd  *exec.Cmd
	Addr string // host:port it listens on

	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
	killed bool
}

// Output returns what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Stop kills the process and waits for it to exit. Safe to call twice.
func (p *Process) Stop() {
	p.mu.Lock()
	already := p.killed
	p.killed = true
	p.mu.Unlock()
	if !already && p.Cmd.Process != nil {
		_ = p.Cmd.Process.Kill()
	}
	<-p.done
}

// Start runs a program, registers its stop with t.Cleanup and waits until
// addr accepts TCP connections (at most 10 s).
func Start(t testing.TB, addr string, name string, args ...string) *Process {
	t.Helper()
	return StartCmd(t, addr, exec.Command(name, args...))
}

// StartCmd is Start for a prepared command (environment, directory).
func StartCmd(t testing.TB, addr string, cmd *exec.Cmd) *Process {
	t.Helper()
	name := cmd.Path
	p := &Process{Cmd: cmd, Addr: addr, done: make(chan struct{})}
	p.Cmd.Stdout = p
	p.Cmd.Stderr = p
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	if err := WaitListening(addr, 10*time.Second, p.done); err != nil {
		t.Fatalf("%s did not listen on %s: %v\noutput:\n%s", name, addr, err, p.Output())
	}
	return p
}

// WaitListening polls addr until it accepts a TCP connection, the timeout
// passes, or exited is closed.
func WaitListening(addr string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited")
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Loopback returns "127.0.0.1:port" for a fresh free port.
func Loopback(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

func splitHostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bad address %q: %v", addr, err)
	}
	return h, p
}

// Serve accepts connections on ln until the test ends (it then closes ln)
// and runs handle on each in its own goroutine.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

// Pause stops the process with SIGSTOP: it keeps its sockets, so clients
// connect and then wait (a server that hangs, not one that is gone).
// Resume undoes it; the test's cleanup kills a paused process too.
func (p *Process) Pause(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
}

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
}

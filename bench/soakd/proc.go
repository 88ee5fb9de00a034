package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"
)

// proc is a child process the soak started; its output goes to a file.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

func startProc(logPath, addr, name string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{}), logf: f}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	if err := waitListening(addr, 15*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s did not listen on %s: %w (log: %s)", name, addr, err, logPath)
	}
	return p, nil
}

// stop kills the process (as a crash would) and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.logf.Close()
}

// wait lets the process exit by itself within d, then kills it.
func (p *proc) wait(d time.Duration) {
	select {
	case <-p.done:
	case <-time.After(d):
	}
	p.stop()
}

func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

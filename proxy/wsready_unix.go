//go:build unix

package proxy

import "syscall"

// peekReady reports whether the socket fd has a byte or an end to read,
// without taking it: side.next parks in RawConn.Read until it does, so a
// websocket waits holding no buffer.
func peekReady(fd uintptr, b []byte) bool {
	_, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK)
	return err != syscall.EAGAIN && err != syscall.EINTR
}

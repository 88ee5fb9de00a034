package proxy

import (
	"net/http"
	"time"
)

// defaultSendTimeout is nginx's send_timeout: the longest one write to a
// client may take to make progress.
const defaultSendTimeout = 60 * time.Second

// writeDeadliner is the part of the server's ResponseWriter (HTTP/1.1, 2
// and 3 alike) that bounds how long its writes may block.
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// armSend gives the response's writes from now sendTimeout to get through:
// a client that stops reading is cut, as nginx's send_timeout does, and
// its connection and goroutine are freed. It re-arms at most once per
// quarter of the timeout, so a write always has at least 3/4 of it.
func (s *reqState) armSend(now time.Time) {
	if s.wdl != nil && now.Sub(s.armedAt) > s.send/4 {
		s.armedAt = now
		_ = s.wdl.SetWriteDeadline(now.Add(s.send))
	}
}

// startSend arms the send timeout for a new request. (A websocket's
// connection may then idle for hours: the server clears its deadlines
// when it is hijacked.)
func (s *reqState) startSend(w http.ResponseWriter, timeout time.Duration, now time.Time) {
	d, ok := w.(writeDeadliner)
	if !ok {
		return
	}
	s.wdl, s.send = d, timeout
	s.armedAt = now
	_ = d.SetWriteDeadline(now.Add(timeout))
}

// sendWriter re-arms the send timeout before each write, for copies that
// would otherwise be one long call.
type sendWriter struct{ s *reqState }

func (w sendWriter) Write(p []byte) (int, error) {
	w.s.armSend(time.Now())
	return w.s.ResponseWriter.Write(p)
}

package proxy

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/fedigate/fedigate/internal/backendroute"
)

// reqState is the per-request state of the edge: the response recorder,
// the decided client and the route, in one allocation. Its ctx field is the
// request's context, so ClientAddr can find it.
type reqState struct {
	http.ResponseWriter
	status   int
	bytes    int64
	route    string
	client   netip.Addr
	counted  bool
	stream   bool // the path is the streaming route's (IsStreaming)
	body     *bodyGuard
	ctx      stateCtx
	wroteHdr bool
	wdl      writeDeadliner // the server's writer; nil: no send timeout (send.go)
	send     time.Duration
	armedAt  time.Time
	facts    backendroute.Facts
	cache    string                   // what the response cache did (NoteCache); "" = not handled
	kept     bool                     // keep holds the edge's own headers (policy.go)
	keep     [len(edgeOwned)][]string // by edgeOwned index
}

type stateKey struct{}

// stateCtx is a context that carries the reqState without a
// context.WithValue allocation.
type stateCtx struct {
	context.Context
	st *reqState
}

func (c *stateCtx) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return c.st
	}
	if backendroute.IsContextKey(key) {
		return &c.st.facts
	}
	return c.Context.Value(key)
}

func stateOf(r *http.Request) *reqState {
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	return st
}

// ClientAddr returns the client address the edge decided for r: the TCP or
// QUIC peer, or the address a trusted proxy named. Outside the edge (no
// decision in the context) it is the host of r.RemoteAddr.
func ClientAddr(r *http.Request) netip.Addr {
	if st := stateOf(r); st != nil {
		return st.client
	}
	return peerAddr(r)
}

// NoteCache records what the response cache did with r ("hit",
// "miss"...), for its access line (cache=). Outside the edge it does
// nothing.
func NoteCache(r *http.Request, result string) {
	if st := stateOf(r); st != nil {
		st.cache = result
	}
}

func (s *reqState) WriteHeader(code int) {
	if code < 200 {
		s.restoreEdge()
		s.armSend(time.Now()) // an informational response is sent at once
	} else if !s.wroteHdr {
		s.wroteHdr = true
		s.status = code
		s.restoreEdge()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *reqState) Write(b []byte) (int, error) {
	if !s.wroteHdr {
		s.wroteHdr = true
		s.status = http.StatusOK
		s.restoreEdge()
	}
	s.armSend(time.Now())
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// ReadFrom copies in pieces, each under the send timeout (over TLS the
// server could not use sendfile anyway).
func (s *reqState) ReadFrom(src io.Reader) (int64, error) {
	if !s.wroteHdr {
		s.wroteHdr = true
		s.status = http.StatusOK
		s.restoreEdge()
	}
	n, err := io.Copy(sendWriter{s}, src)
	s.bytes += n
	return n, err
}

func (s *reqState) Flush() {
	s.armSend(time.Now())
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *reqState) Unwrap() http.ResponseWriter { return s.ResponseWriter }

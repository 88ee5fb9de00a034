package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/copybuf"
	"github.com/fedigate/fedigate/ratelimit"
)

// streamRoute serves the streaming route: websockets through the edge's
// own upgrade proxy, everything else (server-sent events) through a
// reverse proxy that flushes each write. Each stream holds a slot of
// server.max_streams_per_client until it ends.
//
// A proxied websocket costs little while it is idle: after the backend's
// 101 the handler returns (so net/http's buffers and the request go), the
// upgrade's buffers go back to their pools, and two goroutines, one per
// direction, wait for their side to become readable without holding a
// buffer (wsready_unix.go); a copy buffer (internal/copybuf, larger than a
// TLS record) is lent only while data is passed on. Such a websocket holds crypto/tls's own record
// buffers, two sockets and two parked goroutines.
type streamRoute struct {
	c       *chain
	sse     *httputil.ReverseProxy
	h1      *h1Client   // writes the upgrade and waits for its answer
	addr    string      // backend.streaming host:port
	tls     *tls.Config // an https backend.streaming; nil = plain TCP
	keys    ratelimit.Keyer
	max     int
	send    time.Duration // a write to either side must get through in this
	readers sync.Pool     // *bufio.Reader for the upgrade's answer
	writers sync.Pool     // *bufio.Writer for the upgrade request
}

// closeWait is how long a side is given to finish after the other ended:
// a client to answer a close frame, a backend to finish the frame it is
// sending when the edge shuts down.
const closeWait = 2 * time.Second

func newStreamRoute(c *chain, target *httpTarget, b configs.Backend, transport http.RoundTripper, modify func(*http.Response) error) *streamRoute {
	s := &streamRoute{
		c:    c,
		keys: ratelimit.NewKeyer(c.cfg.RateLimit.IPv6Prefix),
		max:  c.cfg.Server.MaxStreamsPerClient,
		send: c.send,
		h1:   newH1Client(target, b, c),
	}
	s.h1.maxIdle = 0 // an answer that is not a 101 closes its connection
	s.sse = &httputil.ReverseProxy{
		Rewrite:        rewriteTo(target),
		Transport:      transport,
		BufferPool:     copybuf.Shared,
		FlushInterval:  -1,
		ErrorHandler:   c.proxyError,
		ErrorLog:       c.errorLog,
		ModifyResponse: modify,
	}
	host, port, err := net.SplitHostPort(target.host)
	if err != nil {
		host, port = target.host, ""
	}
	host = strings.Trim(host, "[]")
	if target.scheme == "https" {
		s.tls = &tls.Config{ServerName: host, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
		if port == "" {
			port = "443"
		}
	} else if port == "" {
		port = "80"
	}
	s.addr = net.JoinHostPort(host, port)
	s.readers.New = func() any { return bufio.NewReaderSize(nil, 4<<10) }
	s.writers.New = func() any { return bufio.NewWriterSize(nil, 2<<10) }
	return s
}

// upgradeOf is the protocol a request asks to switch to: "websocket", or
// "" when it asks for none. Only websockets are proxied.
func upgradeOf(r *http.Request) string {
	up := r.Header["Upgrade"]
	if len(up) == 0 || !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") {
		return ""
	}
	if httpguts.HeaderValuesContainsToken(up, "websocket") {
		return "websocket"
	}
	return ""
}

// serve serves one request of the streaming route; the request ends when
// the client goes, or when the edge shuts down (after its drain).
func (s *streamRoute) serve(w http.ResponseWriter, r *http.Request) {
	if _, asks := r.Header["Upgrade"]; asks && upgradeOf(r) == "" && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") {
		s.c.edgeError(w, r, http.StatusBadRequest, "bad request: only websocket upgrades are proxied")
		return
	}
	sl, ok := s.admit(w, r)
	if !ok {
		return
	}
	if upgradeOf(r) != "" {
		s.serveWebsocket(w, r, sl)
		return
	}
	defer sl.release()
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.c.edge.streamCtx, cancel)
	defer func() {
		stop()
		cancel()
	}()
	s.sse.ServeHTTP(w, r.WithContext(ctx))
}

// admit takes the request's stream slot, or answers 429 when its client
// already holds server.max_streams_per_client streams.
func (s *streamRoute) admit(w http.ResponseWriter, r *http.Request) (*streamSlot, bool) {
	client := ClientAddr(r)
	sl, ok := s.c.edge.streams.admit(s.keys.Key(client), s.max)
	if ok {
		return sl, true
	}
	s.c.log.Info("stream refused: too many open streams", "client", s.keys.Text(client),
		"path", r.URL.Path, "max_streams_per_client", s.max)
	w.Header().Set("Retry-After", "10")
	s.c.edgeError(w, r, http.StatusTooManyRequests, "too many requests: too many open streams from this address")
	return nil, false
}

// serveWebsocket sends the upgrade to backend.streaming and, when it
// answers 101, hands both connections to a wsConn and returns; any other
// answer is relayed as it is. The backend down is a 502 at once, no
// answer within backend.response_timeout a 504.
func (s *streamRoute) serveWebsocket(w http.ResponseWriter, r *http.Request, sl *streamSlot) {
	handed := false
	defer func() {
		if !handed {
			sl.release()
		}
	}()
	if r.ProtoMajor != 1 {
		s.c.edgeError(w, r, http.StatusBadRequest, "bad request: a websocket upgrade needs HTTP/1.1")
		return
	}
	size, err := s.h1.checkHeaders(r)
	if err != nil {
		s.c.proxyError(w, r, err)
		return
	}
	if st := stateOf(r); st != nil {
		st.saveEdge() // a 1xx answer cannot take the edge's headers away
	}
	ctx := r.Context()
	pc, err := s.dial(ctx)
	if err != nil {
		s.c.proxyError(w, r, err)
		return
	}
	resp, _, err := s.h1.exchange(ctx, w, pc, r, size)
	if err == nil {
		pc.setReadDeadline(time.Time{}) // a websocket may idle for hours
	}
	s.writers.Put(resetWriter(pc.bw))
	pc.bw = nil
	if err != nil {
		s.dropConn(pc)
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		s.c.proxyError(w, r, err)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		s.h1.relay(w, r, pc, resp) // the pool takes no connection: maxIdle is 0
		s.readers.Put(resetReader(pc.br))
		return
	}
	if !httpguts.HeaderValuesContainsToken(resp.Header["Upgrade"], "websocket") {
		s.dropConn(pc)
		s.c.proxyError(w, r, errors.New("proxy: the backend switched to another protocol than websocket"))
		return
	}
	head := s.switchingHead(w.Header(), resp.Header)
	frames := len(head)
	if n := pc.br.Buffered(); n > 0 { // the backend's first frames
		b, _ := pc.br.Peek(n)
		head = append(head, b...)
	}
	s.readers.Put(resetReader(pc.br))
	pc.br = nil
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = pc.nc.Close()
		s.c.proxyError(w, r, err)
		return
	}
	if hc, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		s.c.edge.conns.forget(hc) // tracked as a websocket from now
	}
	var early []byte // what the client sent after its upgrade request
	if n := brw.Reader.Buffered(); n > 0 {
		early = make([]byte, n)
		_, _ = brw.Reader.Read(early)
	}
	if st := stateOf(r); st != nil {
		st.status = http.StatusSwitchingProtocols
	}
	ws := newWSConn(s, conn, pc.nc, sl, ClientAddr(r), r.URL.Path)
	handed = true
	ws.start(head, frames, early)
}

// dial connects to backend.streaming, with TLS for an https one.
func (s *streamRoute) dial(ctx context.Context) (*h1Conn, error) {
	nc, err := s.h1.dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		tc := tls.Client(nc, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		nc = tc
	}
	pc := &h1Conn{nc: nc, bw: s.writers.Get().(*bufio.Writer)}
	pc.bw.Reset(nc)
	pc.lr = limitReader{nc: nc, left: -1} // exchange bounds the answer's header
	pc.br = s.readers.Get().(*bufio.Reader)
	pc.br.Reset(&pc.lr)
	return pc, nil
}

func (s *streamRoute) dropConn(pc *h1Conn) {
	_ = pc.nc.Close()
	if pc.br != nil {
		s.readers.Put(resetReader(pc.br))
	}
}

func resetReader(br *bufio.Reader) *bufio.Reader { br.Reset(nil); return br }
func resetWriter(bw *bufio.Writer) *bufio.Writer { bw.Reset(nil); return bw }

// switchingHead is the 101 the client gets: the backend's header less its
// hop-by-hop fields, with the edge's own (HSTS, rate-limit headers).
func (s *streamRoute) switchingHead(edge, backend http.Header) []byte {
	s.c.cleanResponseHeader(backend) // its Connection and Upgrade are written here
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
	for _, h := range [2]http.Header{edge, backend} {
		for k, vv := range h {
			for _, v := range vv {
				b.WriteString(k)
				b.WriteString(": ")
				b.WriteString(strings.TrimSpace(v))
				b.WriteString("\r\n")
			}
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

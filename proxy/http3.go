package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// quicListener serves the same handler chain over HTTP/3 on the UDP port
// of server.listen. 0-RTT is refused (Allow0RTT false), so no request
// arrives before the handshake is complete.
type quicListener struct {
	pc  net.PacketConn
	srv *http3.Server
}

// bindQUIC opens the UDP side of server.listen at the port the TCP side
// got. A failure is returned for the caller to log; TCP keeps serving.
func (e *Edge) bindQUIC(c *chain, tcpAddr *net.TCPAddr) (*quicListener, error) {
	host, _, _ := net.SplitHostPort(c.cfg.Server.Listen)
	addr := net.JoinHostPort(host, strconv.Itoa(tcpAddr.Port))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: opening UDP %s for HTTP/3: %w", addr, err)
	}
	s := c.cfg.Server
	srv := &http3.Server{
		Handler:        http.HandlerFunc(e.serve),
		TLSConfig:      http3.ConfigureTLSConfig(e.tlsBase()),
		QUICConfig:     &quic.Config{Allow0RTT: false, MaxIdleTimeout: s.IdleTimeout},
		MaxHeaderBytes: serverHeaderLimit(s),
		IdleTimeout:    s.IdleTimeout,
		Logger:         c.log,
	}
	return &quicListener{pc: pc, srv: srv}, nil
}

func (q *quicListener) serve(c *chain) {
	go func() {
		if err := q.srv.Serve(q.pc); err != nil && err != http.ErrServerClosed && err != quic.ErrServerClosed {
			c.log.Debug("HTTP/3 listener stopped", "addr", q.pc.LocalAddr().String(), "err", err)
		}
	}()
}

// altSvc is the Alt-Svc value that announces q.
func (q *quicListener) altSvc() string {
	return `h3=":` + strconv.Itoa(q.pc.LocalAddr().(*net.UDPAddr).Port) + `"; ma=86400`
}

// shutdown sends GOAWAY, waits for requests (bounded by ctx), then closes.
func (q *quicListener) shutdown(ctx context.Context) {
	_ = q.srv.Shutdown(ctx)
	q.close()
}

func (q *quicListener) close() {
	_ = q.srv.Close()
	_ = q.pc.Close()
}

// earlyDataUnsafe reports a request received before the handshake
// completed (0-RTT) with a method that is not safe to replay.
func earlyDataUnsafe(r *http.Request) bool {
	if r.TLS == nil || r.TLS.HandshakeComplete {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// bodyGuard limits a request body to server.max_request_body and remembers
// why reading it failed, so the proxy error can say 413, 408 or 400; it
// cuts a body that pauses longer than the body idle timeout.
type bodyGuard struct {
	rc       io.ReadCloser
	left     int64
	ctl      *http.ResponseController // sets the read deadline of the request's connection or stream
	idle     time.Duration
	tooLarge bool
	timedOut bool  // a pause longer than idle
	err      error // a read error of the client's body
}

// defaultBodyIdleTimeout is nginx's client_body_timeout.
const defaultBodyIdleTimeout = 60 * time.Second

func (b *bodyGuard) Read(p []byte) (int, error) {
	if b.tooLarge {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.rc.Read(p)
	if err == io.EOF {
		// the body is over: the connection's reads are the server's again
		// (on HTTP/1.1 it now watches for the client leaving). After a
		// failure the deadline stays, so that the server's discarding of
		// the rest of the body cannot wait on the client either.
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	if int64(n) > b.left {
		b.tooLarge = true
		return int(b.left), errBodyTooLarge
	}
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.err = err
		b.timedOut = errors.Is(err, os.ErrDeadlineExceeded)
	}
	return n, err
}

func (b *bodyGuard) Close() error { return b.rc.Close() }

var errBodyTooLarge = errors.New("request body larger than server.max_request_body")

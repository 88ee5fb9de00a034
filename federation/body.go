package federation

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// maxPooled is the largest body buffer kept for reuse; bigger ones are
// left to the collector, so one large delivery does not pin its memory.
const maxPooled = 256 << 10

// delivery is a delivery's body, read whole (the digest and the filters
// need all of it, and it is signed, so it goes on byte for byte) and
// handed to the backend in place of the client's. Its buffer returns to
// the Guard's pool when both the Guard is done with it and the body is
// closed (a transport may still read a body after its RoundTrip
// returned; it closes it when done).
type delivery struct {
	buf  []byte
	off  int
	tmp  []byte // the filters' scratch
	refs atomic.Int32
	pool *sync.Pool
}

// read reads r's body, at most max bytes: Passed, TooLarge or BadBody.
func (d *delivery) read(r *http.Request, max int64) Verdict {
	d.buf, d.off = d.buf[:0], 0
	if r.ContentLength > max {
		return TooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return Passed
	}
	if r.ContentLength > 0 && int64(cap(d.buf)) <= r.ContentLength {
		d.buf = make([]byte, 0, r.ContentLength+1)
	}
	for {
		if len(d.buf) == cap(d.buf) {
			d.buf = append(d.buf, 0)[:len(d.buf)]
		}
		n, err := r.Body.Read(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+n]
		if int64(len(d.buf)) > max {
			return TooLarge
		}
		switch {
		case err == io.EOF:
			return Passed
		case err != nil:
			return BadBody
		}
	}
}

func (d *delivery) Read(p []byte) (int, error) {
	if d.off >= len(d.buf) {
		return 0, io.EOF
	}
	n := copy(p, d.buf[d.off:])
	d.off += n
	return n, nil
}

// WriteTo lets io.Copy send the body in one write.
func (d *delivery) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(d.buf[d.off:])
	d.off += n
	return int64(n), err
}

func (d *delivery) Close() error {
	d.release()
	return nil
}

// release drops one of the two references; the last returns the buffer.
func (d *delivery) release() {
	if d.refs.Add(-1) != 0 {
		return
	}
	if cap(d.buf) <= maxPooled && cap(d.tmp) <= maxPooled {
		d.buf, d.off = d.buf[:0], 0
		d.pool.Put(d)
	}
}

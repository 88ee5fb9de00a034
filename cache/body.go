package cache

import (
	"bytes"
	"io"
	"os"

	"github.com/fedigate/fedigate/internal/copybuf"
)

// fileBody is where a large disk object's body lies: a section of its
// file, opened (and checked) by the disk tier's Get. The open file stays
// readable when the tier replaces or removes the file meanwhile. Nothing
// but the bytes is read from it; it is closed by Entry.release on a hit,
// else when the last object holding it is collected (*os.File's own
// cleanup), since a fetch's waiters may still serve it.
type fileBody struct {
	f      *os.File
	off, n int64
}

// bodySize is the length of o's body, wherever it lies.
func (o *Object) bodySize() int64 {
	if o.file != nil {
		return o.file.n
	}
	return int64(len(o.Body))
}

// bodyReader reads o's body from its start.
func (o *Object) bodyReader() io.ReadSeeker {
	if o.file != nil {
		return io.NewSectionReader(o.file.f, o.file.off, o.file.n)
	}
	return bytes.NewReader(o.Body)
}

// writeBody writes o's body to w; one from a file goes through a pooled
// buffer, never whole into memory.
func (o *Object) writeBody(w io.Writer) error {
	if o.file == nil {
		_, err := w.Write(o.Body)
		return err
	}
	bp := copybuf.Shared.Borrow()
	defer copybuf.Shared.Return(bp)
	_, err := io.CopyBuffer(onlyWriter{w}, o.bodyReader(), *bp)
	return err
}

// onlyWriter hides w's ReadFrom, so the copy uses the pooled buffer.
type onlyWriter struct{ io.Writer }

// inMemory is o with its body in memory: o itself when it is there; for
// the memory tier, which holds no files.
func (o *Object) inMemory() (*Object, error) {
	if o.file == nil {
		return o, nil
	}
	b := make([]byte, o.file.n)
	if _, err := o.file.f.ReadAt(b, o.file.off); err != nil {
		return nil, err
	}
	n := *o
	n.Body, n.file = b, nil
	return &n, nil
}

// release closes the file the entry's bodies lie in, if any: for one
// that nobody else holds (a hit, served).
func (e *Entry) release() {
	if e == nil {
		return
	}
	for _, o := range e.Variants {
		if o.file != nil {
			_ = o.file.f.Close() // every variant of an entry shares one file
			return
		}
	}
}

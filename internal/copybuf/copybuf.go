// Package copybuf owns the one pool of copy buffers that fedigate's
// proxies (the edge's backend paths, the egress tunnels) copy bodies and
// streams through, so that every copy uses the same size and the memory
// they hold is shared.
package copybuf

import "sync"

// Size is the length of a pooled buffer: 32 KiB, io.Copy's own.
const Size = 32 << 10

// Pool lends Size-byte buffers; its zero value is ready. It satisfies
// httputil.BufferPool.
type Pool struct{ p sync.Pool }

// Shared is the pool every proxy of the process uses.
var Shared = &Pool{}

// Borrow returns a buffer of Size bytes, without an allocation once the
// pool is warm; give it back with Return.
func (b *Pool) Borrow() *[]byte {
	if bp, ok := b.p.Get().(*[]byte); ok {
		return bp
	}
	buf := make([]byte, Size)
	return &buf
}

// Return gives back a buffer from Borrow.
func (b *Pool) Return(bp *[]byte) {
	if cap(*bp) < Size {
		return
	}
	*bp = (*bp)[:Size]
	b.p.Put(bp)
}

// Get returns a buffer of Size bytes (httputil.BufferPool).
func (b *Pool) Get() []byte { return *b.Borrow() }

// Put returns a buffer got from Get (httputil.BufferPool).
func (b *Pool) Put(x []byte) { b.Return(&x) }

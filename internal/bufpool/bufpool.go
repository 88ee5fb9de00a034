// Package bufpool owns fedigate's one pool of copy buffers: every body the
// edge relays (httputil.ReverseProxy and the lean HTTP/1.1 client in
// package proxy) and every egress tunnel copied through user space
// (package egress) borrows a Size-byte buffer here and gives it back, so
// an idle gateway holds no copy buffers of its own and a busy one shares
// them across paths.
package bufpool

import "sync"

// Size is the length of every buffer: 32 KiB, io.Copy's and
// httputil.ReverseProxy's own default.
const Size = 32 << 10

var pool = sync.Pool{New: func() any { b := make([]byte, Size); return &b }}

// Get lends a buffer of len Size. Give it back with Put when done.
func Get() *[]byte { return pool.Get().(*[]byte) }

// Put gives back a buffer from Get. A buffer of another length (resliced
// by the borrower) is dropped rather than pooled.
func Put(b *[]byte) {
	if b == nil || len(*b) != Size {
		return
	}
	pool.Put(b)
}

// ReverseProxy is the pool as an httputil.BufferPool: set
// ReverseProxy.BufferPool to ReverseProxy{}. Its Put costs one small
// allocation (the interface passes a slice, the pool keeps pointers).
type ReverseProxy struct{}

// Get lends a buffer of len Size.
func (ReverseProxy) Get() []byte { return *Get() }

// Put gives back a buffer from Get.
func (ReverseProxy) Put(b []byte) { Put(&b) }

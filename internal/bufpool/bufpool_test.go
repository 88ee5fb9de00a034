package bufpool

import (
	"net/http/httputil"
	"testing"
)

var _ httputil.BufferPool = ReverseProxy{}

func TestBuffersAreSizeAndAResliceIsNotPooled(t *testing.T) {
	b := Get()
	if len(*b) != Size {
		t.Fatalf("len %d, want %d", len(*b), Size)
	}
	short := (*b)[:10]
	Put(&short) // dropped: a later Get never sees a 10-byte buffer
	for range 100 {
		g := Get()
		if len(*g) != Size {
			t.Fatalf("Get returned a buffer of len %d", len(*g))
		}
		Put(g)
	}
	if got := (ReverseProxy{}).Get(); len(got) != Size {
		t.Fatalf("ReverseProxy.Get: len %d", len(got))
	}
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Put(Get())
	}
}

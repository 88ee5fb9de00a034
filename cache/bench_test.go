package cache

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// benchCache is a cache holding one public status, as Mastodon sends it.
func benchCache(b *testing.B) (*Cache, *http.Request) {
	b.Helper()
	c, err := New(defaultCacheConfig(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	r := httptest.NewRequest("GET", "https://social.example/users/alice/statuses/1", nil)
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Accept", "application/activity+json")
	r.Header.Set("Signature", `keyId="https://remote.example/actor#main-key",signature="x"`)
	h := http.Header{}
	h.Set("Cache-Control", "max-age=180, public")
	h.Set("Vary", "Accept, Accept-Language, Cookie")
	h.Set("Content-Type", "application/activity+json; charset=utf-8")
	cc, _ := ParseCacheControl(h["Cache-Control"])
	now := time.Now()
	o := c.newObject(r, 200, h, cc, make([]byte, 2048), now, now)
	bp := c.bufs.Get().(*[]byte)
	key, _ := appendPrimaryKey((*bp)[:0], r)
	lk, _ := c.find(r, bp)
	if !c.store(key, lk.hash, r.URL.Path, o) {
		b.Fatal("not stored")
	}
	return c, r
}

// BenchmarkHitLookup: keys, store read, variant selection and the
// freshness decision of a hit: no allocation.
func BenchmarkHitLookup(b *testing.B) {
	c, r := benchCache(b)
	b.ReportAllocs()
	for b.Loop() {
		bp := c.bufs.Get().(*[]byte)
		lk, ok := c.find(r, bp)
		if !ok || lk.obj == nil || decide(lk.obj, lk.reqCC, false, lk.now) != useFresh {
			b.Fatal("not a hit")
		}
		c.bufs.Put(bp)
	}
}

// discardWriter is a ResponseWriter that keeps nothing, reusing its map.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHitServe: a whole hit through Handler, the answer written.
func BenchmarkHitServe(b *testing.B) {
	c, r := benchCache(b)
	h := c.Handler(http.NotFoundHandler())
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkParseCacheControl: Mastodon's most common answer.
func BenchmarkParseCacheControl(b *testing.B) {
	v := []string{"max-age=180, public, stale-while-revalidate=30, stale-if-error=86400"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCacheControl(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskHit: a hit of a 1 MB object on the disk tier, through
// Handler: the file opened, its checksum streamed, the body copied out
// through one pooled buffer (B/op stays far under the body's size).
func BenchmarkDiskHit(b *testing.B) {
	cfg := defaultCacheConfig()
	cfg.Dir = b.TempDir()
	cfg.DiskPrefixes = []string{"/media/"}
	c, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	r := httptest.NewRequest("GET", "https://social.example/media/a.png", nil)
	h := http.Header{"Cache-Control": {"max-age=3600, public"}, "Content-Type": {"image/png"}}
	cc, _ := ParseCacheControl(h["Cache-Control"])
	now := time.Now()
	o := c.newObject(r, 200, h, cc, make([]byte, 1<<20), now, now)
	bp := c.bufs.Get().(*[]byte)
	key, _ := appendPrimaryKey((*bp)[:0], r)
	lk, _ := c.find(r, bp)
	if !c.store(key, lk.hash, r.URL.Path, o) {
		b.Fatal("not stored")
	}
	hd := c.Handler(http.NotFoundHandler())
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		hd.ServeHTTP(w, r)
		if w.h.Get("Content-Length") != "1048576" {
			b.Fatal("not a disk hit")
		}
	}
}

package cache

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedWriter is a client that takes its answer slowly: its first Write
// blocks until gate is closed, so an answer being sent stays in flight.
type gatedWriter struct {
	h       http.Header
	code    int
	started chan struct{}
	gate    chan struct{}
	once    sync.Once
	body    bytes.Buffer
}

func newGatedWriter(gate chan struct{}) *gatedWriter {
	return &gatedWriter{h: http.Header{}, started: make(chan struct{}), gate: gate}
}

func (g *gatedWriter) Header() http.Header { return g.h }
func (g *gatedWriter) WriteHeader(code int) {
	if g.code == 0 {
		g.code = code
	}
}
func (g *gatedWriter) Write(p []byte) (int, error) {
	g.WriteHeader(http.StatusOK)
	g.once.Do(func() { close(g.started); <-g.gate })
	return g.body.Write(p)
}

func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestDiskHitsStreamFromTheFile: concurrent hits of a large object on
// the disk tier, each sent to a client that takes it slowly, hold a copy
// buffer each, not the body: 24 hits of 4 MB in flight grow the heap by
// far less than the 96 MB their bodies are. Ranges are served from the
// file too, and a hit leaves no file open behind it.
func TestDiskHitsStreamFromTheFile(t *testing.T) {
	cfg := defaultCacheConfig()
	cfg.MaxMemory, cfg.MaxObject, cfg.MaxDisk = 4<<20, 1<<20, 256<<20
	cfg.Dir = filepath.Join(t.TempDir(), "cache")
	var sb strings.Builder
	for i := 0; sb.Len() < 4<<20; i++ {
		fmt.Fprintf(&sb, "%08d", i) // no two 10-byte ranges alike
	}
	big := sb.String()
	rg := newRig(t, cfg, fixed(200, big, "Cache-Control: public, max-age=3600", "Content-Type: image/png"))
	if _, b := rg.do("GET", "/media/big.png"); b != big {
		t.Fatalf("first fetch: %d bytes", len(b))
	}
	if _, disk := rg.cache.Stats(); disk.Objects != 1 {
		t.Fatalf("disk tier %+v: want the object", disk)
	}
	h := rg.cache.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("a hit went to the backend")
	}))
	hit := func(w http.ResponseWriter, hdr ...string) {
		r := httptest.NewRequest("GET", rg.front.URL+"/media/big.png", nil)
		for _, kv := range hdr {
			k, v, _ := strings.Cut(kv, ": ")
			r.Header.Set(k, v)
		}
		h.ServeHTTP(w, r)
	}
	fds := openFiles(t)
	const n = 24
	gate := make(chan struct{})
	ws := make([]*gatedWriter, n)
	var wg sync.WaitGroup
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range ws {
		ws[i] = newGatedWriter(gate)
		wg.Add(1)
		go func() { defer wg.Done(); hit(ws[i]) }()
	}
	for _, w := range ws {
		select {
		case <-w.started:
		case <-time.After(10 * time.Second):
			t.Fatal("a hit never started its answer")
		}
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	close(gate)
	wg.Wait()
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d hits of %d bytes in flight: heap grew by %d bytes", n, len(big), grown)
	if grown > 16<<20 {
		t.Errorf("%d hits in flight grew the heap by %d bytes: the bodies were loaded", n, grown)
	}
	for i, w := range ws {
		if w.code != http.StatusOK || w.body.String() != big || w.h.Get("Content-Length") != "4194304" {
			t.Fatalf("hit %d: status %d, %d bytes, Content-Length %q", i, w.code, w.body.Len(), w.h.Get("Content-Length"))
		}
	}
	rw := httptest.NewRecorder()
	hit(rw, "Range: bytes=1000000-1000015")
	if rw.Code != http.StatusPartialContent || rw.Body.String() != big[1000000:1000016] {
		t.Fatalf("range: %d %q", rw.Code, rw.Body.String())
	}
	rw = httptest.NewRecorder()
	hit(rw, "Range: bytes=0-9,2000000-2000009")
	if b := rw.Body.String(); rw.Code != http.StatusPartialContent || !strings.Contains(b, big[:10]) || !strings.Contains(b, big[2000000:2000010]) ||
		!strings.HasPrefix(rw.Header().Get("Content-Type"), "multipart/byteranges") {
		t.Fatalf("two ranges: %d %q", rw.Code, b)
	}
	if open := openFiles(t); open > fds+1 {
		t.Fatalf("%d files open after the hits, %d before: a hit leaves its file open", open, fds)
	}
}

// TestDiskObjectRevalidatedAndStale: a large object on the disk tier,
// expired, is revalidated by a 304 (served whole, and stored anew with
// its body copied from the old file into the new one, which alone stays)
// and served stale when the backend fails.
func TestDiskObjectRevalidatedAndStale(t *testing.T) {
	cfg := defaultCacheConfig()
	cfg.MaxMemory, cfg.MaxObject = 4<<20, 64<<10
	cfg.Dir = filepath.Join(t.TempDir(), "cache")
	big := strings.Repeat("B", 300<<10)
	hdr := []string{"Cache-Control: public, max-age=10, stale-if-error=600", `Etag: "v1"`}
	rg := newRig(t, cfg, fixed(200, big, hdr...))
	rg.do("GET", "/media/a.mp4")
	rg.clock.Advance(20 * time.Second)
	rg.setAnswer(func(_ int, r *http.Request) (int, []string, string) {
		if r.Header.Get("If-None-Match") != `"v1"` {
			t.Errorf("revalidation without the validator: %q", r.Header.Get("If-None-Match"))
		}
		return http.StatusNotModified, append(hdr, "X-Revalidated: yes"), ""
	})
	resp, b := rg.do("GET", "/media/a.mp4")
	if b != big || rg.lastResult() != Revalidated || resp.Header.Get("X-Revalidated") != "yes" {
		t.Fatalf("after a 304: %d bytes, %v, %v", len(b), rg.lastResult(), resp.Header)
	}
	resp, b = rg.do("GET", "/media/a.mp4")
	if b != big || rg.lastResult() != Hit || resp.Header.Get("X-Revalidated") != "yes" || rg.fetches.Load() != 2 {
		t.Fatalf("the updated object: %d bytes, %v, %d fetches", len(b), rg.lastResult(), rg.fetches.Load())
	}
	cleanUp(rg.cache.disk)
	if files, _ := filepath.Glob(filepath.Join(cfg.Dir, "*.obj")); len(files) != 1 {
		t.Fatalf("%d files on disk, want the new one only", len(files))
	}
	rg.clock.Advance(20 * time.Second)
	rg.setAnswer(fixed(http.StatusServiceUnavailable, "down"))
	if _, b := rg.do("GET", "/media/a.mp4"); b != big || rg.lastResult() != Stale {
		t.Fatalf("stale-if-error: %d bytes, %v", len(b), rg.lastResult())
	}
}

// TestDiskRefusesMetadataItCouldNotRead: fields over the metadata bound
// are refused at Set (ErrTooLarge, no file), not written for every Get to
// drop as broken.
func TestDiskRefusesMetadataItCouldNotRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	d, err := OpenDisk(dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e := testEntry("https://a.example/media/1.png", "body")
	e.Variants[0].Header.Set("X-Huge", strings.Repeat("h", maxDiskMeta))
	if err := d.Set(0, e); err != ErrTooLarge {
		t.Fatalf("Set: %v, want ErrTooLarge", err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
}

package cache

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestMemoryStaysUnderMaxMemory: 100 MB of distinct storable objects pass
// through a cache of 16 MB; what it holds (keys, fields, bodies) stays
// under max_memory, and so does the heap it leaves behind.
func TestMemoryStaysUnderMaxMemory(t *testing.T) {
	cfg := defaultCacheConfig()
	cfg.MaxMemory, cfg.MaxObject = 16<<20, 1<<20
	body := strings.Repeat("x", 64<<10)
	rg := newRig(t, cfg, fixed(200, body, "Cache-Control: public, max-age=600", "Vary: Accept"))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	const n = 1600 // 1600 x 64 KB = 100 MB
	for i := 0; i < n; i++ {
		resp, b := rg.do("GET", "/media/"+strconv.Itoa(i), "Accept: image/png")
		if resp.StatusCode != http.StatusOK || len(b) != len(body) {
			t.Fatalf("object %d: status %d, %d bytes", i, resp.StatusCode, len(b))
		}
		if i%100 == 99 {
			rg.cache.mem.c.CleanUp()
			if st := rg.cache.mem.Stats(); st.Bytes > cfg.MaxMemory {
				t.Fatalf("after %d objects the memory tier holds %d bytes, over max_memory %d", i+1, st.Bytes, cfg.MaxMemory)
			}
		}
	}
	st := rg.cache.mem.Stats()
	if st.Evictions == 0 || st.Objects == 0 {
		t.Fatalf("stats %+v: want evictions and objects kept", st)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(base.HeapAlloc); grown > cfg.MaxMemory+8<<20 {
		t.Fatalf("heap grew by %d bytes for a max_memory of %d", grown, cfg.MaxMemory)
	}
	t.Logf("kept %d objects, %d bytes, %d evictions", st.Objects, st.Bytes, st.Evictions)
}

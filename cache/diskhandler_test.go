package cache

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiskTierThroughHandler: an answer over max_object goes to the disk
// tier, as does anything under the preset's disk prefixes (Pleroma's
// /media); both are served again after the cache is built anew on the
// same dir (a restart), and a corrupted file is fetched again, not served.
func TestDiskTierThroughHandler(t *testing.T) {
	cfg := defaultCacheConfig()
	cfg.MaxMemory, cfg.MaxObject = 4<<20, 64<<10
	cfg.Dir = filepath.Join(t.TempDir(), "cache")
	cfg.DiskPrefixes = []string{"/media/"}
	big := strings.Repeat("B", 200<<10)
	rg := newRig(t, cfg, func(_ int, r *http.Request) (int, []string, string) {
		if strings.HasPrefix(r.URL.Path, "/media/") {
			return 200, []string{"Cache-Control: public, max-age=3600"}, "small media"
		}
		return 200, []string{"Cache-Control: public, max-age=3600"}, big
	})
	rg.do("GET", "/big")
	rg.do("GET", "/media/a.png")
	if _, b := rg.do("GET", "/big"); b != big || rg.lastResult() != Hit {
		t.Fatalf("big answer: %d bytes, %v", len(b), rg.lastResult())
	}
	mem, disk := rg.cache.Stats()
	if disk.Objects != 2 || mem.Objects != 0 {
		t.Fatalf("memory %+v disk %+v: want both on disk", mem, disk)
	}
	// a restart: a new cache on the same dir
	_ = rg.cache.Close()
	c2, err := New(cfg, Options{Now: rg.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	rg.front.Config.Handler = c2.Handler(rg.front.Config.Handler.(*handler).next)
	rg.cache = c2
	if _, b := rg.do("GET", "/media/a.png"); b != "small media" || rg.fetches.Load() != 2 {
		t.Fatalf("after a restart: %q, %d fetches", b, rg.fetches.Load())
	}
	files, _ := filepath.Glob(filepath.Join(cfg.Dir, "*.obj"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "BBBB") {
			b[len(b)/2] ^= 0xff
			_ = os.WriteFile(f, b, 0o600)
		}
	}
	if _, b := rg.do("GET", "/big"); b != big || rg.fetches.Load() != 3 {
		t.Fatalf("corrupted file: %d bytes, %d fetches: want a new fetch", len(b), rg.fetches.Load())
	}
	if err := c2.Ready(); err != nil {
		t.Fatal(err)
	}
}

package cache

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRecordingHoldsAtMostMaxMemory: the bodies of misses being recorded
// are held in memory while they arrive, and together they hold at most
// max_memory. With it spent by slow answers, another storable miss is
// served whole but passes through unstored (Cache-Status detail=busy, of
// known length or not); once they are done, the budget is whole again.
func TestRecordingHoldsAtMostMaxMemory(t *testing.T) {
	cfg := defaultCacheConfig()
	cfg.MaxMemory, cfg.MaxObject = 4<<20, 1<<20
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := strings.Repeat("m", 1<<20-4<<10) // under max_object with its fields
	gate := make(chan struct{})
	started := make(chan struct{}, 8)
	h := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(http.StatusOK)
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			_, _ = w.Write([]byte(body[:1]))
			started <- struct{}{}
			<-gate
			_, _ = w.Write([]byte(body[1:]))
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	get := func(path string) *httptest.ResponseRecorder {
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, httptest.NewRequest("GET", "https://social.example"+path, nil))
		return rw
	}
	var wg sync.WaitGroup
	slow := make([]*httptest.ResponseRecorder, 4)
	for i := range slow {
		wg.Add(1)
		go func() { defer wg.Done(); slow[i] = get("/slow/" + strconv.Itoa(i)) }()
	}
	for range slow {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("a slow answer never started")
		}
	}
	if got := c.recording.Load(); got != 4*int64(len(body)) {
		t.Fatalf("4 answers of %d bytes being recorded hold %d bytes", len(body), got)
	}
	if rw := get("/other"); rw.Code != 200 || rw.Body.Len() != len(body) || !strings.Contains(rw.Header().Get("Cache-Status"), "detail=busy") {
		t.Fatalf("with the budget spent: %d, %d bytes, Cache-Status %q", rw.Code, rw.Body.Len(), rw.Header().Get("Cache-Status"))
	}
	// Of unknown length, it is found out only as the body comes, after
	// the fields went out: the next request shows it was not stored.
	if rw := get("/other-chunked?chunked=1"); rw.Code != 200 || rw.Body.Len() != len(body) {
		t.Fatalf("chunked with the budget spent: %d, %d bytes", rw.Code, rw.Body.Len())
	}
	close(gate)
	wg.Wait()
	for i, rw := range slow {
		if rw.Body.String() != body {
			t.Fatalf("slow answer %d: %d bytes", i, rw.Body.Len())
		}
		if again := get("/slow/" + strconv.Itoa(i)); again.Header().Get("Cache-Status") != "fedigate; hit" {
			t.Fatalf("slow answer %d was not stored: Cache-Status %q", i, again.Header().Get("Cache-Status"))
		}
	}
	if got := c.recording.Load(); got != 0 {
		t.Fatalf("%d bytes still held after every answer was recorded", got)
	}
	for _, want := range []string{"fwd=uri-miss; fwd-status=200; stored", "fedigate; hit"} {
		if rw := get("/other-chunked?chunked=1"); rw.Header().Get("Cache-Status") != "fedigate; "+strings.TrimPrefix(want, "fedigate; ") {
			t.Fatalf("chunked after the slow answers: Cache-Status %q, want %q", rw.Header().Get("Cache-Status"), want)
		}
	}
	if got := c.recording.Load(); got != 0 {
		t.Fatalf("%d bytes still held after a chunked answer", got)
	}
}

package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStaleIfError: an expired answer is served while the backend fails
// (unreachable, too slow, 502/503/504), within the answer's
// stale-if-error and never past the stale_if_error bound.
func TestStaleIfError(t *testing.T) {
	rows := []struct {
		name    string
		cc      string
		advance time.Duration
		fail    func(rg *rig)
		status  int // what the client gets after the failure
	}{
		{"503 within the bound", "max-age=1", 10 * time.Minute, failWith(503), 200},
		{"502 within the bound", "max-age=1", 10 * time.Minute, failWith(502), 200},
		{"504 within the bound", "max-age=1", 10 * time.Minute, failWith(504), 200},
		{"500 within the bound", "max-age=1", 10 * time.Minute, failWith(500), 200},
		{"404 is an answer, not a failure", "max-age=1", 10 * time.Minute, failWith(404), 404},
		{"503 past the bound", "max-age=1", 2 * time.Hour, failWith(503), 503},
		{"the answer's stale-if-error is shorter", "max-age=1, stale-if-error=10", time.Minute, failWith(503), 503},
		{"the answer's stale-if-error cannot pass the bound", "max-age=1, stale-if-error=86400", 2 * time.Hour, failWith(503), 503},
		{"must-revalidate forbids it", "max-age=1, must-revalidate", time.Minute, failWith(503), 503},
		{"backend unreachable", "max-age=1", 10 * time.Minute, func(rg *rig) { rg.backend.Close() }, 200},
		{"backend times out", "max-age=1", 10 * time.Minute, func(rg *rig) {
			rg.setAnswer(func(int, *http.Request) (int, []string, string) {
				time.Sleep(2500 * time.Millisecond)
				return 200, nil, "late"
			})
		}, 200},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			rg := newRig(t, defaultCacheConfig(), fixed(200, "old", "Cache-Control: "+row.cc))
			if _, body := rg.do("GET", "/p"); body != "old" {
				t.Fatalf("body %q", body)
			}
			rg.clock.Advance(row.advance)
			row.fail(rg)
			resp, body := rg.do("GET", "/p")
			if resp.StatusCode != row.status {
				t.Fatalf("status %d, want %d (Cache-Status %q)", resp.StatusCode, row.status, resp.Header.Get("Cache-Status"))
			}
			if row.status == 200 {
				if body != "old" || rg.lastResult() != Stale || !strings.Contains(resp.Header.Get("Cache-Status"), "detail=stale-if-error") {
					t.Fatalf("body %q result %v Cache-Status %q: want the stale answer", body, rg.lastResult(), resp.Header.Get("Cache-Status"))
				}
			}
		})
	}
}

func failWith(status int) func(*rig) {
	return func(rg *rig) { rg.setAnswer(fixed(status, "failed", "Cache-Control: no-store")) }
}

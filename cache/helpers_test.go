package cache

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// answer is what the test backend sends for its n-th fetch (from 1).
type answer func(n int, r *http.Request) (status int, hdr []string, body string)

// rig is a real backend on loopback behind a reverse proxy wrapped by the
// cache, served over HTTPS on loopback.
type rig struct {
	t       *testing.T
	clock   *testenv.Clock
	cache   *Cache
	backend *httptest.Server
	front   *httptest.Server
	client  *http.Client
	fetches atomic.Int64
	answer  atomic.Pointer[answer]
	mu      sync.Mutex
	results []Result
}

func defaultCacheConfig() configs.Cache {
	return configs.Cache{Enabled: true, MaxMemory: 64 << 20, MaxObject: 1 << 20, MaxDisk: 64 << 20,
		StaleIfError: time.Hour, StatusHeader: "Cache-Status", NormalizeAccept: true}
}

func newRig(t *testing.T, cfg configs.Cache, a answer) *rig {
	t.Helper()
	rg := &rig{t: t, clock: testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	rg.answer.Store(&a)
	rg.backend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(rg.fetches.Add(1))
		status, hdr, body := (*rg.answer.Load())(n, r)
		h := w.Header()
		h.Set("Date", rg.clock.Now().Format(http.TimeFormat))
		for _, kv := range hdr {
			k, v, _ := strings.Cut(kv, ": ")
			h.Add(k, v)
		}
		if status != http.StatusNotModified && h.Get("Content-Length") == "" {
			h.Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(rg.backend.Close)
	target, _ := url.Parse(rg.backend.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.Host = pr.In.Host
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery // as the edge does
		},
		Transport: &http.Transport{ResponseHeaderTimeout: 2 * time.Second},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				w.WriteHeader(http.StatusGatewayTimeout) // as the edge's proxyError
				return
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	c, err := New(cfg, Options{Now: rg.clock.Now, Wait: 2 * time.Second, OnResult: func(_ *http.Request, res Result) {
		rg.mu.Lock()
		rg.results = append(rg.results, res)
		rg.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	rg.cache = c
	rg.front = httptest.NewTLSServer(c.Handler(rp))
	t.Cleanup(rg.front.Close)
	rg.client = rg.front.Client()
	rg.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return rg
}

func (rg *rig) setAnswer(a answer) { rg.answer.Store(&a) }

// do sends one request; hdr are "Name: value" lines ("Host: x" sets Host).
func (rg *rig) do(method, path string, hdr ...string) (*http.Response, string) {
	rg.t.Helper()
	req, err := http.NewRequest(method, rg.front.URL+path, nil)
	if err != nil {
		rg.t.Fatal(err)
	}
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ": ")
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	before := rg.reported()
	resp, err := rg.client.Do(req)
	if err != nil {
		rg.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	// The cache reports its result after the answer went out: a large
	// answer can be read whole before that (lastResult would see the one
	// before).
	for deadline := time.Now().Add(2 * time.Second); rg.reported() == before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return resp, string(b)
}

func (rg *rig) reported() int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return len(rg.results)
}

func (rg *rig) lastResult() Result {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if len(rg.results) == 0 {
		return 255
	}
	return rg.results[len(rg.results)-1]
}

// fixed answers every fetch alike.
func fixed(status int, body string, hdr ...string) answer {
	return func(int, *http.Request) (int, []string, string) { return status, hdr, body }
}

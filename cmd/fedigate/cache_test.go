package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// cacheGateway runs a gateway in this process (mastodon preset, the cache
// on) in front of a backend answering Mastodon's public status headers.
func cacheGateway(t *testing.T) (*gateway, *configs.Config, *atomic.Int64, func(path string) *http.Response) {
	t.Helper()
	var fetches atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=180, public")
		w.Header().Set("Vary", "Accept, Accept-Language, Cookie")
		_, _ = io.WriteString(w, "status")
	}))
	t.Cleanup(be.Close)
	cfg, err := configs.Default(configs.PresetMastodon)
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.Loopback(t)
	cfg.Server.Listen, cfg.Server.HTTP3, cfg.Server.Hosts = addr, false, []string{"social.test"}
	cfg.TLS.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Backend.Web, cfg.Backend.Streaming = be.URL, ""
	cfg.Egress.Listen, cfg.Admin.Listen = "", ""
	g, err := buildGateway(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.shutdown(ctx)
	})
	c := clientTo(addr)
	get := func(path string) *http.Response {
		resp, err := c.Get("https://social.test" + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	return g, cfg, &fetches, get
}

func cacheCount(t *testing.T, g *gateway, result string) float64 {
	t.Helper()
	mfs, err := g.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "fedigate_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelIs(m, "result", result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestCacheMetricsAndReloadKeepsObjects: results are counted in
// fedigate_cache_requests_total; a reload that leaves [cache] alone keeps
// the stored objects, one that changes it starts afresh.
func TestCacheMetricsAndReloadKeepsObjects(t *testing.T) {
	g, cfg, fetches, get := cacheGateway(t)
	get("/users/a/statuses/1")
	if resp := get("/users/a/statuses/1"); !strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("Cache-Status %q, want a hit", resp.Header.Get("Cache-Status"))
	}
	if cacheCount(t, g, "miss") != 1 || cacheCount(t, g, "hit") != 1 {
		t.Fatalf("metrics: miss %v hit %v", cacheCount(t, g, "miss"), cacheCount(t, g, "hit"))
	}
	next := *cfg
	next.RateLimit.Rules = append([]configs.Rule(nil), cfg.RateLimit.Rules...)
	next.RateLimit.Rules[0].Limit++
	before := g.cache
	if err := g.reload(&next); err != nil {
		t.Fatal(err)
	}
	if g.cache != before {
		t.Fatal("a reload without a [cache] change built a new cache")
	}
	get("/users/a/statuses/1")
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches after a reload: the stored object was lost", fetches.Load())
	}
	changed := next
	changed.Cache.MaxMemory = 128 << 20
	if err := g.reload(&changed); err != nil {
		t.Fatal(err)
	}
	if g.cache == before {
		t.Fatal("a [cache] change kept the old cache")
	}
	get("/users/a/statuses/1")
	if fetches.Load() != 2 {
		t.Fatalf("%d fetches, want a miss in the new cache", fetches.Load())
	}
	off := changed
	off.Cache.Enabled = false
	if err := g.reload(&off); err != nil {
		t.Fatal(err)
	}
	if resp := get("/users/a/statuses/1"); resp.Header.Get("Cache-Status") != "" || fetches.Load() != 3 {
		t.Fatalf("cache off: Cache-Status %q, %d fetches", resp.Header.Get("Cache-Status"), fetches.Load())
	}
}

// TestReadyzFollowsCacheDisk: /readyz's cache_disk check fails when the
// disk tier's directory is gone, and says so.
func TestReadyzFollowsCacheDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	cfg, err := configs.Default(configs.PresetPleroma)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cache.Dir = dir
	cfg.TLS.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Egress.Listen, cfg.Admin.Listen = "", ""
	g, err := buildGateway(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.closeParts()
	var probe func(context.Context) error
	for _, c := range g.readyChecks() {
		if c.Name == "cache_disk" {
			probe = c.Probe
		}
	}
	if probe == nil {
		t.Fatal("no cache_disk check with cache.dir set")
	}
	if err := probe(context.Background()); err != nil {
		t.Fatalf("healthy disk tier: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := probe(context.Background()); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("dir gone: %v", err)
	}
}

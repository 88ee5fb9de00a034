package admin

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// CacheTiers are the response cache's counters at one moment, per tier.
type CacheTiers struct {
	MemObjects, MemBytes, MemEvictions    int64
	DiskObjects, DiskBytes, DiskEvictions int64
}

// cacheMetrics are the response cache's metrics: results counted as they
// happen, tier sizes read from the cache when scraped.
type cacheMetrics struct {
	results *prometheus.CounterVec
	known   map[string]prometheus.Counter // the six results, resolved once
	source  atomic.Pointer[func() CacheTiers]
	objects *prometheus.Desc
	bytes   *prometheus.Desc
	evicted *prometheus.Desc
}

func newCacheMetrics(reg *prometheus.Registry) *cacheMetrics {
	c := &cacheMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedigate_cache_requests_total", Help: "Requests the response cache handled, by result (hit, miss, stale, coalesced, revalidated, bypass).",
		}, []string{"result"}),
		objects: prometheus.NewDesc("fedigate_cache_objects", "Primary keys stored, by tier (memory, disk).", []string{"tier"}, nil),
		bytes:   prometheus.NewDesc("fedigate_cache_bytes", "Bytes stored (keys, fields and bodies), by tier.", []string{"tier"}, nil),
		evicted: prometheus.NewDesc("fedigate_cache_evictions_total", "Entries evicted to stay under max_memory / max_disk, by tier.", []string{"tier"}, nil),
	}
	c.known = map[string]prometheus.Counter{}
	for _, r := range []string{"hit", "miss", "stale", "coalesced", "revalidated", "bypass"} {
		c.known[r] = c.results.WithLabelValues(r)
	}
	reg.MustRegister(c.results, c)
	return c
}

func (c *cacheMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.objects
	ch <- c.bytes
	ch <- c.evicted
}

func (c *cacheMetrics) Collect(ch chan<- prometheus.Metric) {
	src := c.source.Load()
	if src == nil {
		return
	}
	t := (*src)()
	for _, x := range []struct {
		tier              string
		objs, bytes, evic int64
	}{{"memory", t.MemObjects, t.MemBytes, t.MemEvictions}, {"disk", t.DiskObjects, t.DiskBytes, t.DiskEvictions}} {
		ch <- prometheus.MustNewConstMetric(c.objects, prometheus.GaugeValue, float64(x.objs), x.tier)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(x.bytes), x.tier)
		ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(x.evic), x.tier)
	}
}

// CacheResult counts one request the response cache handled.
func (m *Metrics) CacheResult(result string) {
	if c, ok := m.cache.known[result]; ok {
		c.Inc()
		return
	}
	m.cache.results.WithLabelValues(result).Inc()
}

// CacheSource sets what the tier metrics read when scraped; nil = no cache.
func (m *Metrics) CacheSource(f func() CacheTiers) {
	if f == nil {
		m.cache.source.Store(nil)
		return
	}
	m.cache.source.Store(&f)
}

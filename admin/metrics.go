// Package admin owns fedigate's operator surface on admin.listen: /healthz
// (the process is up), /readyz (every part it depends on answers),
// /metrics (Prometheus) and / (the status page: the last hour of those
// metrics, sampled into a ring in memory, the dependencies' states and the
// last refusals). The metrics live in a Metrics value with its own
// registry; the other packages report through their Observe hooks, which
// cmd/fedigate points at the Metrics methods here. Nothing in this package
// knows another package's insides.
package admin

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every fedigate metric in a registry of its own (no
// package globals, so tests and reloads never collide).
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	limitDecisions *prometheus.CounterVec
	storeErrors    prometheus.Counter
	breakerOpen    atomic.Pointer[func() bool]
	gateEvents     *prometheus.CounterVec
	surge          prometheus.Gauge
	egressEvents   *prometheus.CounterVec
	egressBytes    *prometheus.CounterVec
	certExpiry     *prometheus.GaugeVec
	deliveries     *prometheus.CounterVec
	refusedTop     *topN
	cache          *cacheMetrics

	refused refusals // the last refusals, for the status page

	// reqSeries holds, per route and status, the series Request adds to
	// (requestSeries): looking them up in the vectors hashes the labels
	// on every request.
	reqSeries sync.Map // requestKey -> *requestSeries
}

type requestKey struct {
	route  string
	status int
}

// requestSeries is one route and status's series: the request count, the
// route's latency and, for 502 and 504, the backend errors.
type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
	errors  prometheus.Counter // nil unless 502 or 504
}

// NewMetrics registers every metric, plus Go runtime and process metrics.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedigate_requests_total", Help: "Requests answered by the edge, by route class and status code.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fedigate_request_duration_seconds", Help: "Time from request to the end of the response, by route class.",
		Buckets: latencyBuckets,
	}, []string{"route"})
	m.upstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedigate_backend_errors_total", Help: "Requests the backend did not answer (502) or answered too late (504), by route class.",
	}, []string{"route", "code"})
	m.limitDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedigate_ratelimit_decisions_total", Help: "Rate-limit decisions by rule and outcome (allowed, limited, store_error_allowed, store_error_denied).",
	}, []string{"rule", "outcome"})
	m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fedigate_ratelimit_store_errors_total", Help: "Decisions the rate-limit store could not make (Redis down or slow).",
	})
	breakerOpen := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fedigate_ratelimit_store_breaker_open", Help: "1 while the rate-limit store's breaker is open (Redis skipped after failures in a row), else 0.",
	}, func() float64 {
		if open := m.breakerOpen.Load(); open != nil {
			return b2f((*open)())
		}
		return 0
	})
	m.gateEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedigate_signup_events_total", Help: "Sign-up gate events: challenge shown, solved, pass admitted, refused (by reason).",
	}, []string{"event", "reason"})
	m.surge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fedigate_signup_surge", Help: "1 while the sign-up gate is in surge lock-down, else 0.",
	})
	m.egressEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedigate_egress_requests_total", Help: "Egress proxy requests and tunnels by kind (connect, forward) and verdict (allowed, or the refusal reason, or upstream_error).",
	}, []string{"kind", "verdict"})
	m.egressBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedigate_egress_bytes_total", Help: "Bytes carried by the egress, by direction (up = to the destination).",
	}, []string{"direction"})
	m.certExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fedigate_certificate_expiry_timestamp_seconds", Help: "When each served certificate expires (Unix time).",
	}, []string{"name"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedigate_federation_deliveries_total", Help: "Inbox deliveries by the federation guard's verdict (passed, denied, limited, dropped, rejected, ...).",
	}, []string{"verdict"})
	m.refusedTop = newTopN("fedigate_federation_refused_top", "Deliveries refused per sending domain, for the 10 most refused domains (bounded: estimated over the 256 most refused).", 10, 256)
	for _, c := range []prometheus.Collector{m.deliveries, m.refusedTop, m.requests, m.latency, m.upstreamErrors, m.limitDecisions, m.storeErrors,
		breakerOpen, m.gateEvents, m.surge, m.egressEvents, m.egressBytes, m.certExpiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	m.cache = newCacheMetrics(m.Registry)
	return m
}

// latencyBuckets are the request latency histogram's bounds (seconds);
// the status page reads its quantiles from them. Never written.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Request records one answered request.
func (m *Metrics) Request(route string, status int, d time.Duration) {
	k := requestKey{route, status}
	v, ok := m.reqSeries.Load(k)
	if !ok {
		code := strconv.Itoa(status)
		rs := &requestSeries{count: m.requests.WithLabelValues(route, code), latency: m.latency.WithLabelValues(route)}
		if status == 502 || status == 504 {
			rs.errors = m.upstreamErrors.WithLabelValues(route, code)
		}
		v, _ = m.reqSeries.LoadOrStore(k, rs)
	}
	rs := v.(*requestSeries)
	rs.count.Inc()
	rs.latency.Observe(d.Seconds())
	if rs.errors != nil {
		rs.errors.Inc()
	}
}

// RateLimit records one rate-limit decision; storeErr marks a decision made
// by on_store_error because the store failed.
func (m *Metrics) RateLimit(rule, outcome string, storeErr bool) {
	m.limitDecisions.WithLabelValues(rule, outcome).Inc()
	switch outcome {
	case "limited":
		m.refused.add(429, rule)
	case "store_error_denied":
		m.refused.add(503, rule)
	}
	if storeErr {
		m.storeErrors.Inc()
	}
}

// WatchStoreBreaker makes fedigate_ratelimit_store_breaker_open read
// open() at each scrape, so it shows the breaker itself, never a stale
// copy (cmd passes the running Limiter's StoreDown, and the new one's on
// reload); nil = 0.
func (m *Metrics) WatchStoreBreaker(open func() bool) {
	if open == nil {
		m.breakerOpen.Store(nil)
		return
	}
	m.breakerOpen.Store(&open)
}

// Gate records a sign-up gate event.
func (m *Metrics) Gate(event, reason string) {
	m.gateEvents.WithLabelValues(event, reason).Inc()
	if event == "refused" {
		m.refused.add(403, "signup: "+reason)
	}
}

// Surge records the surge lock-down turning on or off.
func (m *Metrics) Surge(on bool) { m.surge.Set(b2f(on)) }

// Egress records one egress request or tunnel and its bytes.
func (m *Metrics) Egress(kind, verdict string, up, down int64) {
	m.egressEvents.WithLabelValues(kind, verdict).Inc()
	if up > 0 {
		m.egressBytes.WithLabelValues("up").Add(float64(up))
	}
	if down > 0 {
		m.egressBytes.WithLabelValues("down").Add(float64(down))
	}
}

// CertExpiry records when the certificate for name expires.
func (m *Metrics) CertExpiry(name string, notAfter time.Time) {
	m.certExpiry.WithLabelValues(name).Set(float64(notAfter.Unix()))
}

// Federation records one inbox delivery; a refused one counts against its
// sending domain ("" when unsigned: not counted there).
func (m *Metrics) Federation(verdict, domain string, refused bool) {
	m.deliveries.WithLabelValues(verdict).Inc()
	if refused && domain != "" {
		m.refusedTop.add(domain)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// AccessLogDropped exports dropped (the access log's count of the lines
// it dropped: buffer full, write failed) as
// fedigate_accesslog_dropped_lines_total. Called once, when an access log
// is built.
func (m *Metrics) AccessLogDropped(dropped func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fedigate_accesslog_dropped_lines_total", Help: "Access-log lines dropped because the output did not keep up (buffer full) or failed.",
	}, func() float64 { return float64(dropped()) }))
}

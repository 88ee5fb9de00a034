package admin

import (
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The series the status page reads from the registry. The cache's is
// optional: its chart appears once the series exists.
const (
	seriesRequests = "fedigate_requests_total"
	seriesLatency  = "fedigate_request_duration_seconds"
	seriesLimit    = "fedigate_ratelimit_decisions_total"
	seriesGate     = "fedigate_signup_events_total"
	seriesEgress   = "fedigate_egress_requests_total"
	seriesCache    = "fedigate_cache_requests_total"
	seriesRSS      = "process_resident_memory_bytes"
	seriesGo       = "go_goroutines"
)

// Sample is what happened in one sampling interval, read from the
// registry's counters as differences from the previous sample.
type Sample struct {
	T          int64              `json:"t"`       // end of the interval, Unix seconds
	Routes     map[string]float64 `json:"routes"`  // requests per second by route
	Classes    map[string]float64 `json:"classes"` // requests per second by status class ("2xx")
	P50        *float64           `json:"p50"`     // latency in ms; nil: no request in the interval
	P99        *float64           `json:"p99"`
	Limited    map[string]float64 `json:"limited"` // rate-limit refusals by rule (count in the interval)
	Gate       map[string]float64 `json:"gate"`    // sign-up gate events by kind (count)
	Egress     map[string]float64 `json:"egress"`  // egress verdicts (count)
	CacheHit   *float64           `json:"cache"`   // hit ratio 0..1; nil: no cache lookup (or no cache)
	RSS        float64            `json:"rss"`     // bytes
	Goroutines float64            `json:"goroutines"`

	secs    float64   // length of the interval
	buckets []float64 // latency histogram counts in the interval (non-cumulative, per bound)
	lookups float64   // cache lookups in the interval
	hits    float64
}

// history is the bounded ring of the last hour's samples and the
// counters' last values they are differences from.
type history struct {
	mu      sync.Mutex
	ring    []Sample
	next    int
	n       int
	prev    map[string]float64 // cumulative value of each counter series at the last sample
	prevT   time.Time
	hasPrev bool
}

func newHistory(size int) *history {
	return &history{ring: make([]Sample, size), prev: map[string]float64{}}
}

// record reads the gathered families at now and appends one sample; the
// first call only sets the baseline.
func (h *history) record(now time.Time, fams []*dto.MetricFamily) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := map[string]float64{}
	s := Sample{T: now.Unix(), Routes: map[string]float64{}, Classes: map[string]float64{},
		Limited: map[string]float64{}, Gate: map[string]float64{}, Egress: map[string]float64{}}
	secs := now.Sub(h.prevT).Seconds()
	delta := func(key string, v float64) float64 {
		cur[key] = v
		d := v - h.prev[key]
		if d < 0 { // a counter started again: all of it is new
			d = v
		}
		return d
	}
	var cumBuckets []float64
	for _, f := range fams {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			l := labels(m)
			switch name {
			case seriesRequests:
				d := delta(name+l["route"]+"\x00"+l["code"], m.GetCounter().GetValue())
				s.Routes[l["route"]] += d
				if c := l["code"]; len(c) == 3 {
					s.Classes[c[:1]+"xx"] += d
				}
			case seriesLatency:
				hist := m.GetHistogram()
				if cumBuckets == nil {
					cumBuckets = make([]float64, len(latencyBuckets)+1)
				}
				for i, b := range hist.GetBucket() {
					if i < len(latencyBuckets) {
						cumBuckets[i] += delta(name+l["route"]+"\x00"+strconv.Itoa(i), float64(b.GetCumulativeCount()))
					}
				}
				cumBuckets[len(latencyBuckets)] += delta(name+l["route"]+"\x00count", float64(hist.GetSampleCount()))
			case seriesLimit:
				d := delta(name+l["rule"]+"\x00"+l["outcome"], m.GetCounter().GetValue())
				if l["outcome"] == "limited" || l["outcome"] == "store_error_denied" {
					s.Limited[l["rule"]] += d
				}
			case seriesGate:
				s.Gate[l["event"]] += delta(name+l["event"]+"\x00"+l["reason"], m.GetCounter().GetValue())
			case seriesEgress:
				s.Egress[l["verdict"]] += delta(name+l["kind"]+"\x00"+l["verdict"], m.GetCounter().GetValue())
			case seriesCache:
				d := delta(name+l["result"], m.GetCounter().GetValue())
				s.lookups += d
				if l["result"] == "hit" {
					s.hits += d
				}
			case seriesRSS:
				s.RSS = m.GetGauge().GetValue()
			case seriesGo:
				s.Goroutines = m.GetGauge().GetValue()
			}
		}
	}
	first := !h.hasPrev
	h.prev, h.prevT, h.hasPrev = cur, now, true
	if first || secs <= 0 {
		return
	}
	s.secs = secs
	for k, v := range s.Routes {
		s.Routes[k] = v / secs
	}
	for k, v := range s.Classes {
		s.Classes[k] = v / secs
	}
	if cumBuckets != nil {
		s.buckets = make([]float64, len(cumBuckets))
		for i := range cumBuckets { // cumulative counts to counts per bucket; the last is +Inf
			s.buckets[i] = cumBuckets[i]
			if i > 0 {
				s.buckets[i] -= cumBuckets[i-1]
			}
		}
		s.P50, s.P99 = quantileMS(latencyBuckets, s.buckets, .5), quantileMS(latencyBuckets, s.buckets, .99)
	}
	if s.lookups > 0 {
		r := s.hits / s.lookups
		s.CacheHit = &r
	}
	h.ring[h.next] = s
	h.next = (h.next + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
}

// since returns the samples after t (Unix seconds), oldest first.
func (h *history) since(t int64) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, h.n)
	for i := range h.n {
		s := h.ring[(h.next-h.n+i+len(h.ring))%len(h.ring)]
		if s.T > t {
			out = append(out, s)
		}
	}
	return out
}

// quantileMS estimates the q-quantile in ms from counts per bucket, by
// linear interpolation inside the bucket, as Prometheus's
// histogram_quantile does; nil when there are no observations. A quantile
// in the +Inf bucket is reported as the highest finite bound.
func quantileMS(bounds, counts []float64, q float64) *float64 {
	var total float64
	for _, c := range counts {
		total += c
	}
	if total <= 0 || len(bounds) == 0 {
		return nil
	}
	rank := q * total
	var seen float64
	for i, c := range counts {
		if seen+c >= rank && c > 0 {
			if i >= len(bounds) {
				v := bounds[len(bounds)-1] * 1000
				return &v
			}
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			v := (lo + (bounds[i]-lo)*(rank-seen)/c) * 1000
			v = math.Round(v*100) / 100
			return &v
		}
		seen += c
	}
	v := bounds[len(bounds)-1] * 1000
	return &v
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// sortedKeys are a map's keys in order, for stable tables.
func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

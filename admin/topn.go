package admin

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// topN counts refusals per domain in bounded memory (the Space-Saving
// algorithm: at most capacity domains are tracked; a new one takes the
// place of the least counted, inheriting its count, so a domain refused
// often is never lost, while a flood of one-off names cannot grow the
// map) and exposes the n most refused as a gauge with a domain label.
// The value exposed is the count less what it inherited: never more than
// the domain's true count, and exact for a domain tracked since its first
// refusal; a domain refused more than 1/capacity of all refusals is
// always tracked.
type topN struct {
	desc     *prometheus.Desc
	n        int
	capacity int

	mu     sync.Mutex
	counts map[string]*tally
}

type tally struct{ count, inherited uint64 }

func newTopN(name, help string, n, capacity int) *topN {
	return &topN{desc: prometheus.NewDesc(name, help, []string{"domain"}, nil), n: n, capacity: capacity, counts: map[string]*tally{}}
}

// add counts one refusal of domain.
func (t *topN) add(domain string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.counts[domain]; ok {
		c.count++
		return
	}
	if len(t.counts) < t.capacity {
		t.counts[domain] = &tally{count: 1}
		return
	}
	least, min := "", ^uint64(0)
	for d, c := range t.counts {
		if c.count < min {
			least, min = d, c.count
		}
	}
	delete(t.counts, least)
	t.counts[domain] = &tally{count: min + 1, inherited: min}
}

// top returns the n most counted domains, most first, ties by name.
func (t *topN) top() []domainCount {
	t.mu.Lock()
	out := make([]domainCount, 0, len(t.counts))
	for d, c := range t.counts {
		out = append(out, domainCount{d, c.count - c.inherited})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		return out[i].domain < out[j].domain
	})
	if len(out) > t.n {
		out = out[:t.n]
	}
	return out
}

type domainCount struct {
	domain string
	count  uint64
}

func (t *topN) Describe(ch chan<- *prometheus.Desc) { ch <- t.desc }

func (t *topN) Collect(ch chan<- prometheus.Metric) {
	for _, dc := range t.top() {
		ch <- prometheus.MustNewConstMetric(t.desc, prometheus.GaugeValue, float64(dc.count), dc.domain)
	}
}

package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// point is the gateway's own process figures at one moment.
type point struct {
	at         time.Duration // since the traffic started
	rss, heap  float64       // bytes: resident set, Go heap in use
	goroutines float64
	ok         bool
}

// sampler reads fedigate's /metrics every 5 s.
type sampler struct {
	admin  string
	mu     sync.Mutex
	points []point
}

func (s *sampler) run(start time.Time, d time.Duration) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for time.Since(start) < d {
		p := sampleNow(s.admin)
		p.at = time.Since(start)
		s.mu.Lock()
		s.points = append(s.points, p)
		s.mu.Unlock()
		<-t.C
	}
}

func (s *sampler) get() []point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]point(nil), s.points...)
}

func sampleNow(admin string) point {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(admin + "/metrics")
	if err != nil {
		return point{}
	}
	defer resp.Body.Close()
	p := point{ok: true}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			p.rss = v
		case "go_memstats_heap_inuse_bytes":
			p.heap = v
		case "go_goroutines":
			p.goroutines = v
		}
	}
	return p
}

package admin

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// The status page: / renders the tables server-side (it works without
// JavaScript), /status.js draws charts from /status.json. Everything is
// embedded and served from here; the Content-Security-Policy allows
// nothing from elsewhere and no inline script or style.
//
//go:embed assets/status.html assets/status.js assets/status.css
var assets embed.FS

var pageTemplate = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"utc":     func(t int64) string { return time.Unix(t, 0).UTC().Format(time.TimeOnly) },
	"utcDate": func(t int64) string { return time.Unix(t, 0).UTC().Format(time.DateOnly) },
}).ParseFS(assets, "assets/status.html"))

const statusCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Cert is one served certificate, as the status page shows it.
type Cert struct {
	Name     string
	NotAfter time.Time
}

// certWarn is when a certificate's expiry turns the page's state to warn
// (as configs/deploy/alerts.yml does).
const certWarn = 14 * 24 * time.Hour

// depState is a dependency's last probe and since when it is in that state.
type depState struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Since int64  `json:"since"`
}

type certState struct {
	Name     string  `json:"name"`
	NotAfter int64   `json:"not_after"`
	DaysLeft float64 `json:"days_left"`
	State    string  `json:"state"` // ok, warn (under 14 days), expired
}

// row is one line of the summary table: last minute and last hour.
type row struct {
	Group  string `json:"group"`
	Label  string `json:"label"`
	Minute string `json:"minute"`
	Hour   string `json:"hour"`
}

// statusDoc is /status.json and what the page's template renders.
type statusDoc struct {
	Now      int64       `json:"now"`
	Every    float64     `json:"every"` // sampling interval, seconds
	Samples  []Sample    `json:"samples"`
	Deps     []depState  `json:"deps"`
	Certs    []certState `json:"certs"`
	Refusals []Refusal   `json:"refusals"`
	Summary  []row       `json:"summary"`
}

// status is the Server's sampler state.
type status struct {
	hist  *history // nil without Metrics
	every time.Duration
	mu    sync.Mutex
	deps  map[string]depState
	stop  chan struct{}
	done  chan struct{}
}

func (s *Server) routesStatus(mux *http.ServeMux) {
	every := s.opts.SampleEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	s.status = &status{every: every, deps: map[string]depState{}}
	if s.opts.Metrics != nil {
		s.status.hist = newHistory(int((time.Hour + every - 1) / every))
	}
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	for _, name := range []string{"status.js", "status.css"} {
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			securityHeaders(w)
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, assets, "assets/"+name)
		})
	}
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// startSampling samples the metrics and probes the dependencies every
// interval until stopSampling.
func (s *Server) startSampling() {
	st := s.status
	st.stop, st.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(st.done)
		t := time.NewTicker(st.every)
		defer t.Stop()
		for {
			s.sample(time.Now())
			s.probeDeps()
			select {
			case <-st.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *Server) stopSampling() {
	if s.status.stop != nil {
		close(s.status.stop)
		<-s.status.done
	}
}

// sample adds one sample of the metrics to the ring.
func (s *Server) sample(now time.Time) {
	if s.status.hist == nil {
		return
	}
	fams, err := s.opts.Metrics.Registry.Gather()
	if err != nil {
		s.log.Warn("status page: gathering metrics failed", "err", err)
	}
	s.status.hist.record(now, fams)
}

// probeDeps runs the /readyz checks and keeps each one's state and since when.
func (s *Server) probeDeps() {
	s.mu.RLock()
	checks := s.checks
	s.mu.RUnlock()
	results := s.probeAll(context.Background(), checks)
	now := time.Now().Unix()
	st := s.status
	st.mu.Lock()
	defer st.mu.Unlock()
	next := make(map[string]depState, len(results))
	for name, res := range results {
		d := depState{Name: name, OK: res.OK, Error: res.Error, Since: now}
		if old, ok := st.deps[name]; ok && old.OK == res.OK {
			d.Since = old.Since
		}
		next[name] = d
	}
	st.deps = next
}

func (s *Server) doc(since int64, now time.Time) statusDoc {
	st := s.status
	d := statusDoc{Now: now.Unix(), Every: st.every.Seconds(), Samples: []Sample{}, Deps: []depState{}, Certs: []certState{}, Refusals: []Refusal{}}
	var all []Sample
	if st.hist != nil {
		all = st.hist.since(0)
		d.Samples = st.hist.since(since)
		d.Refusals = s.opts.Metrics.refused.last()
	}
	st.mu.Lock()
	for _, dep := range st.deps {
		d.Deps = append(d.Deps, dep)
	}
	st.mu.Unlock()
	sort.Slice(d.Deps, func(i, j int) bool { return d.Deps[i].Name < d.Deps[j].Name })
	if s.opts.Certificates != nil {
		for _, c := range s.opts.Certificates() {
			left := c.NotAfter.Sub(now)
			state := "ok"
			switch {
			case left <= 0:
				state = "expired"
			case left < certWarn:
				state = "warn"
			}
			d.Certs = append(d.Certs, certState{Name: c.Name, NotAfter: c.NotAfter.Unix(),
				DaysLeft: float64(int(left.Hours()/24*10)) / 10, State: state})
		}
	}
	d.Summary = summarize(all, now)
	return d
}

func (s *Server) statusJSON(w http.ResponseWriter, r *http.Request) {
	var since int64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			http.Error(w, "since: want Unix seconds", http.StatusBadRequest)
			return
		}
		since = n
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.doc(since, time.Now()))
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTemplate.Execute(w, s.doc(0, time.Now())); err != nil {
		s.log.Warn("status page: render failed", "err", err)
	}
}

// summarize makes the summary table's rows: rates, counts and latency
// quantiles over the last minute and over the hour kept.
func summarize(all []Sample, now time.Time) []row {
	var minute []Sample
	for _, s := range all {
		if s.T > now.Unix()-60 {
			minute = append(minute, s)
		}
	}
	var rows []row
	rate := func(group string, pick func(Sample) map[string]float64) {
		for _, k := range unionKeys(all, pick) {
			f := func(ss []Sample) string {
				var n, secs float64
				for _, s := range ss {
					n += pick(s)[k] * s.secs
					secs += s.secs
				}
				if secs == 0 {
					return "–"
				}
				return strconv.FormatFloat(n/secs, 'f', 2, 64)
			}
			rows = append(rows, row{group, k, f(minute), f(all)})
		}
	}
	count := func(group string, pick func(Sample) map[string]float64) {
		for _, k := range unionKeys(all, pick) {
			f := func(ss []Sample) string {
				var n float64
				for _, s := range ss {
					n += pick(s)[k]
				}
				return strconv.FormatFloat(n, 'f', 0, 64)
			}
			rows = append(rows, row{group, k, f(minute), f(all)})
		}
	}
	rate("Requests/s by route", func(s Sample) map[string]float64 { return s.Routes })
	rate("Requests/s by status", func(s Sample) map[string]float64 { return s.Classes })
	for _, q := range []float64{.5, .99} {
		f := func(ss []Sample) string {
			var bounds []float64
			var sum []float64
			for _, s := range ss {
				if len(s.buckets) > len(sum) {
					sum = append(sum, make([]float64, len(s.buckets)-len(sum))...)
				}
				for i, c := range s.buckets {
					sum[i] += c
				}
			}
			bounds = latencyBounds(len(sum))
			if v := quantileMS(bounds, sum, q); v != nil {
				return strconv.FormatFloat(*v, 'f', 1, 64)
			}
			return "–"
		}
		rows = append(rows, row{"Latency (ms)", fmt.Sprintf("p%g", q*100), f(minute), f(all)})
	}
	count("Rate-limit refusals by rule", func(s Sample) map[string]float64 { return s.Limited })
	count("Sign-up gate events", func(s Sample) map[string]float64 { return s.Gate })
	count("Egress verdicts", func(s Sample) map[string]float64 { return s.Egress })
	ratio := func(ss []Sample) (string, bool) {
		var hits, lookups float64
		for _, s := range ss {
			hits, lookups = hits+s.hits, lookups+s.lookups
		}
		if lookups == 0 {
			return "–", false
		}
		return strconv.FormatFloat(100*hits/lookups, 'f', 1, 64) + " %", true
	}
	if h, ok := ratio(all); ok {
		m, _ := ratio(minute)
		rows = append(rows, row{"Cache", "hit ratio", m, h})
	}
	if len(all) > 0 {
		last := all[len(all)-1]
		var maxRSS float64
		for _, s := range all {
			maxRSS = max(maxRSS, s.RSS)
		}
		rows = append(rows, row{"Process", "memory (RSS, MiB; hour: highest)",
			strconv.FormatFloat(last.RSS/(1<<20), 'f', 1, 64), strconv.FormatFloat(maxRSS/(1<<20), 'f', 1, 64)})
		rows = append(rows, row{"Process", "goroutines (now)", strconv.FormatFloat(last.Goroutines, 'f', 0, 64), ""})
	}
	return rows
}

// latencyBounds are the latency histogram's bounds, for n bucket counts
// (the last one +Inf).
func latencyBounds(n int) []float64 {
	if n == 0 {
		return nil
	}
	return latencyBuckets[:min(n-1, len(latencyBuckets))]
}

func unionKeys(ss []Sample, pick func(Sample) map[string]float64) []string {
	u := map[string]float64{}
	for _, s := range ss {
		for k := range pick(s) {
			u[k] = 0
		}
	}
	return sortedKeys(u)
}

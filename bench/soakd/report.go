package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// report turns the soak's results into report.md and soak.png.
type report struct {
	d                     time.Duration
	results               []result
	faults                []fault
	samples               []point
	idleBefore, idleAfter point
	idleWait              time.Duration // how long after the traffic idleAfter was taken
	log                   string
	rate, workers         int
	every                 time.Duration
}

const (
	recoveryGrace = 10 * time.Second // a fault's window runs this long after the part is back
	recoveryLook  = 25 * time.Second // how far past the part's return the last error is looked for
)

// phase is the fault a moment falls in ("steady" outside every window).
func (r *report) phase(at time.Duration) string {
	for _, f := range r.faults {
		if at >= f.start && at < f.end+recoveryGrace {
			return f.name
		}
	}
	return "steady"
}

func (r *report) isOK(x result) bool {
	return x.errText == "" && slices.Contains(kinds[x.kind].ok, x.status)
}

// class is an error's class: the HTTP status, or the transport failure.
func class(x result) string {
	if x.errText != "" {
		if x.status != 0 {
			return fmt.Sprintf("%d then %s", x.status, x.errText)
		}
		return x.errText
	}
	return fmt.Sprintf("HTTP %d", x.status)
}

func (r *report) markdown() string {
	var b strings.Builder
	ok, errs := 0, 0
	for _, x := range r.results {
		if r.isOK(x) {
			ok++
		} else {
			errs++
		}
	}
	fmt.Fprintf(&b, "# fedigate soak: %s\n\n", r.d)
	fmt.Fprintf(&b, "%d requests (%d a second asked, %d workers, loopback), %d answered as expected, %d not. "+
		"Faults every %s, each part down for %s; a fault's window runs until %s after the part is back.\n\n",
		len(r.results), r.rate, r.workers, ok, errs, r.every, outage, recoveryGrace)
	b.WriteString("Sign-up POSTs without a pass count as expected when refused (403 by the gate, 429 by the limit).\n\n")

	b.WriteString("## Faults\n\n| # | fault | at | part back at | errors in its window | last error, after the part was back (looked for up to 25 s, or the next fault) |\n|---|---|---|---|---|---|\n")
	for i, f := range r.faults {
		n, last := 0, time.Duration(-1)
		look := f.end + recoveryLook
		if i+1 < len(r.faults) {
			look = min(look, r.faults[i+1].start) // the next fault's errors are its own
		}
		for _, x := range r.results {
			if end := x.at + x.latency; !r.isOK(x) && end >= f.start && end < look {
				if end < f.end+recoveryGrace {
					n++
				}
				last = max(last, end)
			}
		}
		ended := "no error"
		if last >= 0 {
			ended = fmt.Sprintf("%+.1f s", (last - f.end).Seconds())
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d | %s |\n", i+1, f.name, mmss(f.start), mmss(f.end), n, ended)
	}

	b.WriteString("\n## Errors by class and by fault\n\n")
	phases := []string{"steady", "redis", "socks", "web", "reload"}
	byClass := map[string]map[string]int{}
	byPhaseKind := map[string]map[string]int{}
	total := map[string]int{}
	for _, x := range r.results {
		p := r.phase(x.at + x.latency) // when the answer came
		total[p]++
		if r.isOK(x) {
			continue
		}
		c := class(x)
		if byClass[c] == nil {
			byClass[c] = map[string]int{}
		}
		byClass[c][p]++
		if byPhaseKind[p] == nil {
			byPhaseKind[p] = map[string]int{}
		}
		byPhaseKind[p][kinds[x.kind].name]++
	}
	b.WriteString("| class |")
	for _, p := range phases {
		fmt.Fprintf(&b, " %s |", p)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(phases)) + "\n| requests |")
	for _, p := range phases {
		fmt.Fprintf(&b, " %d |", total[p])
	}
	b.WriteString("\n")
	for _, c := range sortedKeys(byClass) {
		fmt.Fprintf(&b, "| %s |", c)
		for _, p := range phases {
			fmt.Fprintf(&b, " %d |", byClass[c][p])
		}
		b.WriteString("\n")
	}
	b.WriteString("\nWhich requests failed, by fault:\n\n")
	for _, p := range phases {
		if len(byPhaseKind[p]) == 0 {
			continue
		}
		var parts []string
		for _, k := range sortedKeys(byPhaseKind[p]) {
			parts = append(parts, fmt.Sprintf("%s %d", k, byPhaseKind[p][k]))
		}
		fmt.Fprintf(&b, "- %s: %s\n", p, strings.Join(parts, ", "))
	}

	b.WriteString("\n## By kind of request\n\n| kind | requests | as expected | p50 ms | p99 ms |\n|---|---|---|---|---|\n")
	for i, k := range kinds {
		var lat []time.Duration
		n, good := 0, 0
		for _, x := range r.results {
			if int(x.kind) == i {
				n++
				if r.isOK(x) {
					good++
					lat = append(lat, x.latency)
				}
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s |\n", k.name, n, good, ms(quantile(lat, .5)), ms(quantile(lat, .99)))
	}

	b.WriteString("\n## Over time\n\nLatency of the requests answered as expected (websockets, held open on purpose, left out); process figures from fedigate's /metrics (last sample in the slice).\n\n")
	b.WriteString("| from | req/s | errors | p50 ms | p99 ms | RSS MiB | Go heap MiB | goroutines | faults |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, sl := range r.slices(12) {
		fmt.Fprintf(&b, "| %s | %.0f | %d | %s | %s | %.1f | %.1f | %.0f | %s |\n", mmss(sl.from), sl.rate, sl.errors,
			ms(sl.p50), ms(sl.p99), sl.rss/(1<<20), sl.heap/(1<<20), sl.goroutines, strings.Join(sl.faults, ", "))
	}

	b.WriteString("\n## Memory and goroutines\n\n")
	first, last := r.quarter(0), r.quarter(3)
	fmt.Fprintf(&b, "| | idle before | load, first quarter (median) | load, last quarter (median) | idle %s after |\n|---|---|---|---|---|\n", r.idleWait.Round(time.Second))
	fmt.Fprintf(&b, "| RSS MiB | %.1f | %.1f | %.1f | %.1f |\n", r.idleBefore.rss/(1<<20), first.rss/(1<<20), last.rss/(1<<20), r.idleAfter.rss/(1<<20))
	fmt.Fprintf(&b, "| Go heap in use MiB | %.1f | %.1f | %.1f | %.1f |\n", r.idleBefore.heap/(1<<20), first.heap/(1<<20), last.heap/(1<<20), r.idleAfter.heap/(1<<20))
	fmt.Fprintf(&b, "| goroutines | %.0f | %.0f | %.0f | %.0f |\n\n", r.idleBefore.goroutines, first.goroutines, last.goroutines, r.idleAfter.goroutines)
	gOK := r.idleAfter.ok && r.idleAfter.goroutines <= r.idleBefore.goroutines+2
	mOK := last.rss <= 1.25*first.rss && last.heap <= 1.5*max(first.heap, 4<<20)
	fmt.Fprintf(&b, "Goroutines back to the idle baseline (at most 2 more): **%s**. Memory flat under load (last quarter's RSS within 1.25x of the first's, heap within 1.5x): **%s**. "+
		"Memory returned to baseline: **%s**.\n", yes(gOK), yes(mOK), yes(gOK && mOK))

	b.WriteString("\n## fedigate's log (level warn and above)\n\n")
	counts := map[string]int{}
	panics := strings.Count(r.log, "panic:")
	for _, line := range strings.Split(r.log, "\n") {
		if i := strings.Index(line, "msg="); i >= 0 && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
			lvl := "WARN"
			if strings.Contains(line, "level=ERROR") {
				lvl = "ERROR"
			}
			msg := line[i+4:]
			if j := strings.Index(msg, "\" "); j >= 0 && strings.HasPrefix(msg, "\"") {
				msg = msg[:j+1]
			} else if j := strings.IndexByte(msg, ' '); j >= 0 {
				msg = msg[:j]
			}
			counts[lvl+" "+msg]++
		}
	}
	fmt.Fprintf(&b, "Panics: %d.\n\n", panics)
	if len(counts) == 0 {
		b.WriteString("No warning or error lines.\n")
	}
	for _, k := range sortedKeys(counts) {
		fmt.Fprintf(&b, "- %d × %s\n", counts[k], k)
	}
	return b.String()
}

type slice struct {
	from, to              time.Duration
	rate                  float64
	errors                int
	p50, p99              time.Duration
	rss, heap, goroutines float64
	faults                []string
	count                 float64
}

// slices cuts the run into n equal slices of time.
func (r *report) slices(n int) []slice {
	out := make([]slice, n)
	w := r.d / time.Duration(n)
	lat := make([][]time.Duration, n)
	for i := range out {
		out[i].from, out[i].to = time.Duration(i)*w, time.Duration(i+1)*w
	}
	for _, x := range r.results {
		i := min(int(x.at/w), n-1)
		out[i].count++
		if r.isOK(x) && !kinds[x.kind].long() {
			lat[i] = append(lat[i], x.latency)
		} else if !r.isOK(x) {
			out[i].errors++
		}
	}
	for i := range out {
		out[i].rate = out[i].count / w.Seconds()
		out[i].p50, out[i].p99 = quantile(lat[i], .5), quantile(lat[i], .99)
		for _, p := range r.samples {
			if p.ok && p.at >= out[i].from && p.at < out[i].to {
				out[i].rss, out[i].heap, out[i].goroutines = p.rss, p.heap, p.goroutines
			}
		}
		for _, f := range r.faults {
			if f.start >= out[i].from && f.start < out[i].to {
				out[i].faults = append(out[i].faults, f.name)
			}
		}
	}
	return out
}

// quarter is the median of the process samples in quarter q of the run.
func (r *report) quarter(q int) point {
	var rss, heap, gor []float64
	for _, p := range r.samples {
		if p.ok && int(4*p.at/r.d) == q {
			rss, heap, gor = append(rss, p.rss), append(heap, p.heap), append(gor, p.goroutines)
		}
	}
	return point{rss: median(rss), heap: median(heap), goroutines: median(gor), ok: len(rss) > 0}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func quantile(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return -1
	}
	slices.Sort(v)
	return v[min(int(q*float64(len(v))), len(v)-1)]
}

func ms(d time.Duration) string {
	if d < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

func mmss(d time.Duration) string {
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

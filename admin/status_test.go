package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two samples five seconds apart: rates, latency quantiles, refusals by
// rule and the other counters come out as differences over the interval.
func TestStatusSampleDifferences(t *testing.T) {
	m := NewMetrics()
	s, err := New(configAdmin(), Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	m.Request("web", 200, time.Millisecond) // before the baseline: not counted
	s.sample(t0)
	for range 9 {
		m.Request("web", 200, 3*time.Millisecond)
	}
	m.Request("ratelimit", 429, 100*time.Microsecond)
	m.RateLimit("sign-up", "limited", false)
	m.RateLimit("sign-up", "allowed", false)
	m.Gate("refused", "no_pass")
	m.Egress("connect", "denied_private", 0, 0)
	s.sample(t0.Add(5 * time.Second))
	got := s.status.hist.since(0)
	if len(got) != 1 {
		t.Fatalf("%d samples, want 1 (the first call is the baseline)", len(got))
	}
	x := got[0]
	if x.Routes["web"] != 9.0/5 || x.Routes["ratelimit"] != 1.0/5 || x.Classes["2xx"] != 9.0/5 || x.Classes["4xx"] != 1.0/5 {
		t.Errorf("rates: routes %v classes %v", x.Routes, x.Classes)
	}
	if x.P50 == nil || *x.P50 <= 2.5 || *x.P50 > 5 || x.P99 == nil || *x.P99 > 5 {
		t.Errorf("p50 %v p99 %v, want within the 2.5-5 ms bucket", x.P50, x.P99)
	}
	if x.Limited["sign-up"] != 1 || x.Gate["refused"] != 1 || x.Egress["denied_private"] != 1 || x.CacheHit != nil {
		t.Errorf("limited %v gate %v egress %v cache %v", x.Limited, x.Gate, x.Egress, x.CacheHit)
	}
	ref := m.refused.last()
	if len(ref) != 2 || ref[0].Status != 403 || ref[0].Rule != "signup: no_pass" || ref[1].Status != 429 || ref[1].Rule != "sign-up" {
		t.Errorf("refusals %+v", ref)
	}
}

// The cache's hit ratio appears once its series exists.
func TestStatusCacheRatioWhenSeriesExists(t *testing.T) {
	m := NewMetrics()
	s, _ := New(configAdmin(), Options{Metrics: m})
	t0 := time.Unix(1_800_000_000, 0)
	s.sample(t0)
	for _, r := range []string{"hit", "hit", "hit", "miss"} {
		m.CacheResult(r)
	}
	s.sample(t0.Add(5 * time.Second))
	x := s.status.hist.since(0)[0]
	if x.CacheHit == nil || *x.CacheHit != .75 {
		t.Fatalf("cache hit ratio %v, want 0.75", x.CacheHit)
	}
	rows := summarize(s.status.hist.since(0), t0.Add(5*time.Second))
	if !hasRow(rows, "Cache", "hit ratio", "75.0 %") {
		t.Errorf("summary lacks the hit ratio: %+v", rows)
	}
}

// A flood of samples or refusals never grows memory: the rings are bounded.
func TestStatusRingsBounded(t *testing.T) {
	m := NewMetrics()
	s, _ := New(configAdmin(), Options{Metrics: m, SampleEvery: time.Minute})
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 200 {
		m.Request("web", 200, time.Millisecond)
		s.sample(t0.Add(time.Duration(i) * time.Minute))
	}
	if got := len(s.status.hist.since(0)); got != 60 {
		t.Errorf("%d samples kept at one a minute, want 60 (an hour)", got)
	}
	for range 1000 {
		m.RateLimit("api", "limited", false)
	}
	if got := len(m.refused.last()); got != refusalsKept {
		t.Errorf("%d refusals kept, want %d", got, refusalsKept)
	}
}

// The page is a plain table without JavaScript, names the last refusal
// and the dependencies, and its policy lets nothing in from elsewhere:
// no inline script or style, no third-party URL.
func TestStatusPageTableAndPolicy(t *testing.T) {
	m := NewMetrics()
	down := errors.New("connection refused")
	s := startAdmin(t, Options{Metrics: m, SampleEvery: 50 * time.Millisecond,
		Checks: []Check{{Name: "redis", Probe: func(context.Context) error { return down }}},
		Certificates: func() []Cert {
			return []Cert{{Name: "social.test", NotAfter: time.Now().Add(10*24*time.Hour - time.Hour)}}
		}})
	m.RateLimit("api-sign-up", "limited", false)
	m.Request("web", 200, time.Millisecond)
	base := "http://" + s.Addr().String()
	waitSample(t, base)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = ioCopy(b, resp)
	page := b.String()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{"<td>api-sign-up</td>", `<td class="num">429</td>`, "<td>redis</td><td>down</td>",
		"connection refused", "certificate social.test", "warn: 9.9 days left", "<td>Requests/s by route</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(page) || strings.Contains(page, "style=") ||
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`).MatchString(page) {
		t.Error("the page has an inline script or style, or loads from elsewhere")
	}
	for _, asset := range []string{"/status.js", "/status.css"} {
		code, body := get(t, base+asset)
		if code != 200 || len(body) < 100 || strings.Contains(body, "http://") && asset == "/status.css" {
			t.Errorf("%s: %d", asset, code)
		}
	}
	if code, _ := get(t, base+"/status.json?since=x"); code != 400 {
		t.Errorf("bad since: %d", code)
	}
}

// ?since= returns only newer samples, so each refresh is small.
func TestStatusJSONSince(t *testing.T) {
	m := NewMetrics()
	s := startAdmin(t, Options{Metrics: m, SampleEvery: 20 * time.Millisecond})
	base := "http://" + s.Addr().String()
	waitSample(t, base)
	_, body := get(t, base+"/status.json?since=99999999999")
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Samples) != 0 || doc.Every != 0.02 {
		t.Errorf("since the future: %d samples, every %v", len(doc.Samples), doc.Every)
	}
}

func waitSample(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, body := get(t, base+"/status.json")
		var doc statusDoc
		if json.Unmarshal([]byte(body), &doc) == nil && len(doc.Samples) > 0 && len(doc.Deps) > 0 || strings.Contains(body, `"samples":[{`) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no sample within 5 s")
}

func hasRow(rows []row, group, label, value string) bool {
	for _, r := range rows {
		if r.Group == group && r.Label == label && (r.Minute == value || r.Hour == value) {
			return true
		}
	}
	return false
}

func BenchmarkStatusSample(b *testing.B) {
	m := NewMetrics()
	s, _ := New(configAdmin(), Options{Metrics: m})
	for _, r := range []string{"web", "streaming", "static", "ratelimit"} {
		m.Request(r, 200, time.Millisecond)
		m.RateLimit(r, "limited", false)
	}
	now := time.Unix(1_800_000_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(5 * time.Second)
		s.sample(now)
	}
}

// DNS rebinding: a page at attacker.example, its name re-pointed at
// 127.0.0.1, makes the admin's browser ask the admin listener; the Host it
// sends is the attacker's name, and the listener refuses it.
func TestDNSRebindingRefused(t *testing.T) {
	s := startAdmin(t, Options{Metrics: NewMetrics()})
	port := s.Addr().(*net.TCPAddr).Port
	for host, want := range map[string]int{
		"attacker.example:" + strconv.Itoa(port): http.StatusMisdirectedRequest,
		"attacker.example":                       http.StatusMisdirectedRequest,
		"127.0.0.1.attacker.example":             http.StatusMisdirectedRequest,
		"localhost.attacker.example":             http.StatusMisdirectedRequest,
		"127.0.0.1:" + strconv.Itoa(port):        http.StatusOK,
		"localhost:" + strconv.Itoa(port):        http.StatusOK,
		"[::1]:" + strconv.Itoa(port):            http.StatusOK,
		"127.0.0.2":                              http.StatusOK,
	} {
		for _, path := range []string{"/", "/status.json", "/metrics"} {
			req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+path, nil)
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("Host %q %s: %d, want %d", host, path, resp.StatusCode, want)
			}
		}
	}
}

package admin

import (
	"strconv"
	"strings"
	"testing"
)

// TestFederationMetrics: deliveries count by verdict; refused domains
// appear in the top-N gauge.
func TestFederationMetrics(t *testing.T) {
	m := NewMetrics()
	s := startAdmin(t, Options{Metrics: m})
	m.Federation("passed", "real.example", false)
	for range 3 {
		m.Federation("denied", "spam.example", true)
	}
	m.Federation("dropped", "other.example", true)
	m.Federation("unsigned", "", true)
	_, body := get(t, "http://"+s.Addr().String()+"/metrics")
	for _, want := range []string{
		`fedigate_federation_deliveries_total{verdict="passed"} 1`,
		`fedigate_federation_deliveries_total{verdict="denied"} 3`,
		`fedigate_federation_refused_top{domain="spam.example"} 3`,
		`fedigate_federation_refused_top{domain="other.example"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, `domain="real.example"`) || strings.Contains(body, `domain=""`) {
		t.Error("a passed or unsigned delivery is in the refused top")
	}
}

// TestTopNFloodOfNamesStaysBounded: a flood of one-off domains (a spam
// wave with random names) cannot grow the map or push out a domain
// refused often.
func TestTopNFloodOfNamesStaysBounded(t *testing.T) {
	top := newTopN("x", "x", 3, 16)
	for i := range 100_000 {
		top.add("random" + strconv.Itoa(i) + ".example")
		if i%4 == 0 { // a quarter of all refusals: more than 1/16
			top.add("heavy.example")
		}
	}
	if len(top.counts) > 16 {
		t.Fatalf("%d domains tracked, want at most 16", len(top.counts))
	}
	got := top.top()
	if len(got) != 3 || got[0].domain != "heavy.example" || got[0].count > 25_000 {
		t.Fatalf("top %v, want heavy.example first of 3, at most its true 25000", got)
	}
	for _, dc := range got[1:] {
		if dc.count > 1 {
			t.Errorf("one-off %s shown as refused %d times", dc.domain, dc.count)
		}
	}
}

package admin

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fedigate/fedigate/internal/testenv"
)

// The files for those who run Prometheus: configs/deploy/alerts.yml and
// grafana-dashboard.json. They must load, and every metric they name must
// be one the gateway's /metrics serves.
const deployDir = "../configs/deploy"

// registryNames are the metric names /metrics serves once every metric has
// a value (a labelled metric appears with its first child), histograms
// with their _bucket, _sum and _count series.
func registryNames(t *testing.T) map[string]bool {
	t.Helper()
	m := NewMetrics()
	m.Request("web", 502, time.Millisecond)
	m.RateLimit("r", "limited", true)
	m.WatchStoreBreaker(func() bool { return false })
	m.Gate("challenge", "")
	m.Surge(false)
	m.Egress("connect", "allowed", 1, 1)
	m.CertExpiry("social.test", time.Now())
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}

// metricRef finds metric names in PromQL: fedigate's, and the Go and
// process collectors'.
var metricRef = regexp.MustCompile(`\b(?:fedigate|go|process)_[a-z0-9_]+\b`)

func checkNamed(t *testing.T, file string, exprs []string) {
	t.Helper()
	names := registryNames(t)
	if len(exprs) == 0 {
		t.Fatalf("%s: no expression found", file)
	}
	for _, e := range exprs {
		refs := metricRef.FindAllString(e, -1)
		if len(refs) == 0 {
			t.Errorf("%s: %q names no fedigate metric", file, e)
		}
		for _, r := range refs {
			if !names[r] {
				t.Errorf("%s: %q names %s, which /metrics does not serve", file, e, r)
			}
		}
	}
}

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRulesLoadAndNameRealMetrics(t *testing.T) {
	path := filepath.Join(deployDir, "alerts.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true) // a misspelt key is an error, not a rule Prometheus ignores
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs, alerts []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: rule %q lacks alert, expr, for, a severity or a summary", path, r.Alert)
			}
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: %s: for %q: %v", path, r.Alert, r.For, err)
			}
			exprs, alerts = append(exprs, r.Expr), append(alerts, r.Alert)
		}
	}
	for _, want := range []string{"FedigateCertificateExpiresSoon", "FedigateRateLimitStoreBreakerOpen",
		"FedigateEgressUpstreamErrorsRising", "FedigateSignupSurge", "FedigateBackend5xxRate"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("%s: no alert %s", path, want)
		}
	}
	checkNamed(t, path, exprs)
}

func TestGrafanaDashboardLoadsAndNamesRealMetrics(t *testing.T) {
	path := filepath.Join(deployDir, "grafana-dashboard.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", path)
	}
	var exprs, titles []string
	for _, p := range dash.Panels {
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no title or no query", path, p.Title)
		}
		titles = append(titles, p.Title)
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}
	// the status page's charts
	for _, want := range []string{"Requests/s by route", "Requests/s by status class", "Latency p50 / p99",
		"Rate-limit refusals by rule", "Sign-up gate events", "Egress verdicts", "Certificate days left", "Memory (RSS)", "Goroutines"} {
		if !slices.Contains(titles, want) {
			t.Errorf("%s: no panel %q", path, want)
		}
	}
	checkNamed(t, path, exprs)
}

// Prometheus's own checker accepts the rules, and its rule tests show each
// alert fires on the condition it names and stays quiet otherwise.
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool := testenv.Binary(t, "promtool", "prometheus")
	rules, _ := filepath.Abs(filepath.Join(deployDir, "alerts.yml"))
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// The rule tests compare annotations too: they run on a copy without
	// them, the expressions unchanged.
	b, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, g := range doc["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	bare, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bareRules, tests := filepath.Join(dir, "alerts.yml"), filepath.Join(dir, "alerts_test.yml")
	if err := os.WriteFile(bareRules, bare, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tests, []byte(strings.ReplaceAll(promtoolTests, "RULES", bareRules)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", tests).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// promtool's clock starts at 0: a certificate "expiring at 10 days" is 10
// days away.
const promtoolTests = `rule_files: ["RULES"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'fedigate_certificate_expiry_timestamp_seconds{instance="gw1",name="soon.test"}'
        values: '864000x180'
      - series: 'fedigate_certificate_expiry_timestamp_seconds{instance="gw1",name="fine.test"}'
        values: '5184000x180'
      - series: 'fedigate_ratelimit_store_breaker_open{instance="gw1"}'
        values: '0x10 1x20'
      - series: 'fedigate_signup_surge{instance="gw1"}'
        values: '0x5 1x10'
      - series: 'fedigate_egress_requests_total{instance="gw1",kind="forward",verdict="allowed"}'
        values: '0+60x40'
      - series: 'fedigate_egress_requests_total{instance="gw1",kind="forward",verdict="upstream_error"}'
        values: '0x10 0+30x30'
      - series: 'fedigate_requests_total{instance="gw1",route="web",code="200"}'
        values: '0+600x40'
      - series: 'fedigate_requests_total{instance="gw1",route="web",code="502"}'
        values: '0x10 0+120x30'
    alert_rule_test:
      - eval_time: 90m
        alertname: FedigateCertificateExpiresSoon
        exp_alerts:
          - exp_labels: {severity: warning, instance: gw1, name: soon.test}
      - eval_time: 30m
        alertname: FedigateCertificateExpiresSoon
        exp_alerts: []
      - eval_time: 12m
        alertname: FedigateRateLimitStoreBreakerOpen
        exp_alerts: []
      - eval_time: 14m
        alertname: FedigateRateLimitStoreBreakerOpen
        exp_alerts:
          - exp_labels: {severity: warning, instance: gw1}
      - eval_time: 8m
        alertname: FedigateSignupSurge
        exp_alerts:
          - exp_labels: {severity: warning, instance: gw1}
      - eval_time: 5m
        alertname: FedigateSignupSurge
        exp_alerts: []
      - eval_time: 9m
        alertname: FedigateEgressUpstreamErrorsRising
        exp_alerts: []
      - eval_time: 35m
        alertname: FedigateEgressUpstreamErrorsRising
        exp_alerts:
          - exp_labels: {severity: warning, instance: gw1}
      - eval_time: 9m
        alertname: FedigateBackend5xxRate
        exp_alerts: []
      - eval_time: 25m
        alertname: FedigateBackend5xxRate
        exp_alerts:
          - exp_labels: {severity: critical, instance: gw1}
`

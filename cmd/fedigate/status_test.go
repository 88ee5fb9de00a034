package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/fedigate/fedigate/internal/testenv"
)

// The status page in a real headless Chromium, after real traffic through
// the binary: it draws the charts, names the 429 a client got and its rule,
// shows the backend up and the certificate; without JavaScript the same
// page is a plain table. A screenshot is kept (FEDIGATE_SCREENSHOT_DIR, or
// the test's temporary directory).
func TestStatusPageInChromium(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBackend(t, "web")
	addr, adminAddr := testenv.Loopback(t), testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, adminAddr, backend, `
[[ratelimit.rule]]
name = "api-sign-up"
limit = 2
`))
	startGateway(t, dir, addr, adminAddr)
	base := "http://" + adminAddr
	waitStatus(t, base, func(d statusView) bool { return len(d.Deps) > 0 }) // the baseline sample is taken
	c := clientTo(addr)
	send := func(method, path string) int {
		req, _ := http.NewRequest(method, "https://social.test"+path, strings.NewReader("username=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 20 {
		send("GET", "/api/v1/instance")
	}
	codes := []int{send("POST", "/api/v1/accounts"), send("POST", "/api/v1/accounts"), send("POST", "/api/v1/accounts")}
	if codes[2] != 429 {
		t.Fatalf("API sign-ups: %v, want the third refused 429", codes)
	}
	waitStatus(t, base, func(d statusView) bool { // the traffic's sample and one after it: a line to draw
		for i, s := range d.Samples {
			if s.Routes["web"] > 0 && i < len(d.Samples)-1 {
				return true
			}
		}
		return false
	})

	ctx := testenv.Chromium(t)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 1100), chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`figure[data-chart="routes"] [data-series="web"]`))); err != nil {
		t.Fatal(err)
	}
	type shown struct {
		Charts   []string `json:"charts"`
		Refusals string   `json:"refusals"`
		Deps     string   `json:"deps"`
		Summary  string   `json:"summary"`
		Swatch   string   `json:"swatch"`
	}
	const read = `({
  charts: [...document.querySelectorAll("figure[data-chart]")].map(f => f.dataset.chart),
  refusals: document.querySelector("#refusals").innerText,
  deps: document.querySelector("#deps").innerText,
  summary: document.querySelector("#summary").innerText,
  swatch: (document.querySelector(".legend i") ? getComputedStyle(document.querySelector(".legend i")).backgroundColor : "")
})`
	got, err := chromedp.Run(tctx, chromedp.Evaluate[shown](read))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"routes", "classes", "latency", "limited", "gate", "egress", "rss", "goroutines"} {
		if !strings.Contains(strings.Join(got.Charts, " "), want) {
			t.Errorf("chart %q not drawn (drawn: %v)", want, got.Charts)
		}
	}
	if !strings.Contains(got.Refusals, "429\tapi-sign-up") || !strings.Contains(got.Refusals, "403\tsignup: ") {
		t.Errorf("refusals table:\n%s", got.Refusals)
	}
	if !strings.Contains(got.Deps, "backend_web\tup") || !strings.Contains(got.Deps, "certificate social.test\tok") {
		t.Errorf("dependencies table:\n%s", got.Deps)
	}
	if !strings.Contains(got.Summary, "Requests/s by route\tweb") || !strings.Contains(got.Summary, "Rate-limit refusals by rule\tapi-sign-up\t1\t1") {
		t.Errorf("summary table:\n%s", got.Summary)
	}
	if got.Swatch == "" || got.Swatch == "rgba(0, 0, 0, 0)" {
		t.Errorf("legend colour not applied under the CSP: %q", got.Swatch)
	}
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("FEDIGATE_SCREENSHOT_DIR")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(out, "status-page.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	// Without JavaScript: the server-rendered tables, no charts.
	if _, err := chromedp.Call(tctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#refusals"))); err != nil {
		t.Fatal(err)
	}
	nojs, err := chromedp.Run(tctx, chromedp.Evaluate[shown](read))
	if err != nil {
		t.Fatal(err)
	}
	if len(nojs.Charts) != 0 || !strings.Contains(nojs.Refusals, "429\tapi-sign-up") || !strings.Contains(nojs.Deps, "backend_web\tup") ||
		!strings.Contains(nojs.Summary, "Requests/s by route\tweb") {
		t.Errorf("without JavaScript: charts %v\nrefusals:\n%s\ndeps:\n%s\nsummary:\n%s", nojs.Charts, nojs.Refusals, nojs.Deps, nojs.Summary)
	}
	noJSShot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err == nil {
		_ = os.WriteFile(filepath.Join(out, "status-page-nojs.png"), noJSShot, 0o644)
	}
}

type statusView struct {
	Deps    []json.RawMessage `json:"deps"`
	Samples []struct {
		Routes map[string]float64 `json:"routes"`
	} `json:"samples"`
}

// waitStatus polls /status.json until ok holds (the sampler ticks every 5 s).
func waitStatus(t *testing.T, base string, ok func(statusView) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/status.json")
		if err == nil {
			var d statusView
			err = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			if err == nil && ok(d) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the status page did not show it within 20 s")
}

package signupgate

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fedigate/fedigate/internal/testenv"
)

// TestChromiumSolveTime measures the wall time headless Chromium takes
// from opening the sign-up page to seeing the form (challenge page, PoW in
// Web Workers, verify, redirect) at the difficulties worth choosing from.
// It is a benchmark so plain `go test` never runs it (about a minute):
// go test -run X -bench ChromiumSolveTime -benchtime 1x ./signupgate
func BenchmarkChromiumSolveTime(b *testing.B) {
	t := b
	ctx := testenv.Chromium(t)
	for _, c := range []struct{ bits, runs int }{{16, 15}, {18, 15}, {20, 11}} {
		srv, _ := e2eBackend(t, c.bits)
		var times []time.Duration
		for i := 0; i < c.runs; i++ {
			if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
				t.Fatal(err)
			}
			tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			start := time.Now()
			err := chromedp.Do(tctx, chromedp.Navigate(srv.URL+"/auth/sign_up"), chromedp.WaitVisible(chromedp.CSS("#form-title")))
			cancel()
			if err != nil {
				t.Fatalf("difficulty %d: %v", c.bits, err)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2].Milliseconds()), fmt.Sprintf("median-ms/bits-%d", c.bits))
		t.Logf("difficulty %d: median %v, min %v, max %v (%d runs)", c.bits, times[len(times)/2].Round(time.Millisecond),
			times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), c.runs)
	}
	srv, _ := e2eBackend(t, 1)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/welcome")); err != nil {
		t.Fatal(err)
	}
	// The same hash both ways, in the page: the worker's JS SHA-256 and
	// crypto.subtle.digest (one awaited call per nonce, as a worker would).
	rates, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		JS     float64 `json:"js"`
		Subtle float64 `json:"subtle"`
	}](`(async () => {
  const src = await (await fetch("/.fedigate/pow-worker.js")).text();
  const sha = new Function(src + "; return {sha256: sha256, H: H};")();
  const prefix = "x".repeat(96) + ":";
  const buf = new Uint8Array(prefix.length + 21 + 128);
  for (let i = 0; i < prefix.length; i++) buf[i] = prefix.charCodeAt(i);
  let n = 0, t0 = performance.now();
  while (performance.now() - t0 < 1000) {
    const s = String(n++); let len = prefix.length;
    for (let i = 0; i < s.length; i++) buf[len + i] = s.charCodeAt(i);
    sha.sha256(buf, len + s.length);
  }
  const js = n / ((performance.now() - t0) / 1000);
  const enc = new TextEncoder(); n = 0; t0 = performance.now();
  while (performance.now() - t0 < 1000) { await crypto.subtle.digest("SHA-256", enc.encode(prefix + (n++))); }
  const subtle = n / ((performance.now() - t0) / 1000);
  return {js, subtle};
})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SHA-256 per second on one thread: JS %.0f, crypto.subtle %.0f", rates.JS, rates.Subtle)
}

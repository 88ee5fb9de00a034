package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/ratelimit"
)

// TestAttackNATReconnectsWithTokensNeverLimited: 320 streaming reconnects
// from one address within the window, with the token in each of the
// three places Mastodon's streaming server reads it (Authorization,
// access_token in the query, Sec-WebSocket-Protocol), pass the mastodon
// preset's rules and an unauthenticated rule of the operator's own on the
// streaming route; the same rule refuses reconnects without a token. No
// token reaches the log, at Debug level either, not even from a backend
// that is down.
func TestAttackNATReconnectsWithTokensNeverLimited(t *testing.T) {
	web, _ := recordingBackend(t)
	_, st := wsBackend(t)
	cfg := testConfig(t, web.URL, st.URL)
	cfg.RateLimit.Rules = append(cfg.RateLimit.Rules, configs.Rule{Name: "streaming-anonymous", Paths: []string{"/api/v1/streaming*"},
		Limit: 5, Period: 5 * time.Minute, Unauthenticated: true})
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := ratelimit.New(cfg.RateLimit, ratelimit.Options{Logger: log, ClientAddr: ClientAddr, Streaming: IsStreaming})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	te := startEdge(t, cfg, Options{Logger: log, Guards: []func(http.Handler) http.Handler{l.Middleware}})
	c := te.wsClient()
	c.TLS.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const secret = "s3cr3t-token-value"
	places := []struct {
		name   string
		url    string
		hdr    http.Header
		protos []string
	}{
		{"authorization", wsURL, http.Header{"Authorization": {"Bearer " + secret}}, nil},
		{"query", wsURL + "&access_token=" + secret, nil, nil},
		{"subprotocol", wsURL, nil, []string{secret}},
	}
	for _, p := range places {
		for i := range 320 {
			ws, resp, err := c.Dial(ctx, p.url, p.hdr, p.protos...)
			if err != nil {
				code := 0
				if resp != nil {
					code = resp.StatusCode
				}
				t.Fatalf("token in %s: reconnect %d refused: %d %v", p.name, i+1, code, err)
			}
			_ = ws.CloseNow()
		}
	}
	for i := range 6 {
		ws, resp, err := c.Dial(ctx, wsURL, nil)
		if i < 5 {
			if err != nil {
				t.Fatalf("anonymous reconnect %d: %v", i+1, err)
			}
			_ = ws.CloseNow()
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("6th anonymous reconnect: %v %v, want 429 from the operator's rule", resp, err)
		}
	}
	// errors too: the streaming backend down, a token in the query
	st.Close()
	if _, resp, err := c.Dial(ctx, wsURL+"&access_token="+secret, nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("backend down: %v %v", resp, err)
	}
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Fatalf("a token reached the log:\n%s", out)
	}
	if !strings.Contains(out, "backend error") || !strings.Contains(out, "route=streaming") {
		t.Fatalf("the log lacks the lines checked:\n%.2000s", out)
	}
}

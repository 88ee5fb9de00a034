package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

func startAdmin(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := New(configs.Admin{Listen: "127.0.0.1:0"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /readyz follows a real dependency: a Redis server stopped and started.
func TestReadyzFlipsWithRedis(t *testing.T) {
	r := testenv.Redis(t)
	probe := func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", r.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		buf := make([]byte, 7)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "+PONG\r\n" {
			return errors.New("no PONG")
		}
		return nil
	}
	s := startAdmin(t, Options{Checks: []Check{{Name: "redis", Probe: probe}}})
	base := "http://" + s.Addr().String()
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("ready with Redis up: %d %s", code, body)
	}
	r.Stop()
	code, body := get(t, base+"/readyz")
	var got struct {
		Ready  bool
		Checks map[string]checkResult
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if code != 503 || got.Ready || got.Checks["redis"].OK || got.Checks["redis"].Error == "" {
		t.Fatalf("Redis down: %d %s", code, body)
	}
	testenv.RedisAt(t, r.Addr)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("Redis back: %d", code)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
}

func TestMetricsMoveWithEvents(t *testing.T) {
	m := NewMetrics()
	s := startAdmin(t, Options{Metrics: m})
	m.Request("web", 200, 3*time.Millisecond)
	m.Request("web", 502, time.Millisecond)
	m.RateLimit("sign-up", "limited", false)
	m.RateLimit("sign-up", "store_error_allowed", true)
	m.WatchStoreBreaker(func() bool { return true })
	m.Gate("refused", "replayed")
	m.Surge(true)
	m.Egress("connect", "denied_private", 0, 0)
	m.Egress("forward", "allowed", 10, 20)
	m.CertExpiry("social.example", time.Unix(2000000000, 0))
	_, body := get(t, "http://"+s.Addr().String()+"/metrics")
	for _, want := range []string{
		`fedigate_requests_total{code="200",route="web"} 1`,
		`fedigate_backend_errors_total{code="502",route="web"} 1`,
		`fedigate_request_duration_seconds_count{route="web"} 2`,
		`fedigate_ratelimit_decisions_total{outcome="limited",rule="sign-up"} 1`,
		`fedigate_ratelimit_store_errors_total 1`,
		`fedigate_ratelimit_store_breaker_open 1`,
		`fedigate_signup_events_total{event="refused",reason="replayed"} 1`,
		`fedigate_signup_surge 1`,
		`fedigate_egress_requests_total{kind="connect",verdict="denied_private"} 1`,
		`fedigate_egress_bytes_total{direction="down"} 20`,
		`fedigate_certificate_expiry_timestamp_seconds{name="social.example"} 2e+09`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A peer beyond loopback is refused even if the listener was widened.
func TestRemotePeerRefused(t *testing.T) {
	s, err := New(configs.Admin{Listen: "127.0.0.1:0"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, peer := range []string{"192.0.2.7:5555", "[2001:db8::1]:5555", "[::ffff:192.0.2.7]:5555"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/healthz", nil)
		r.RemoteAddr = peer
		s.srv.Handler.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden {
			t.Errorf("peer %s: %d", peer, w.Code)
		}
	}
	allowed, _ := New(configs.Admin{Listen: "127.0.0.1:0", AllowRemote: true}, Options{})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	allowed.srv.Handler.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("allow_remote: %d", w.Code)
	}
}

func BenchmarkMetricsRequest(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.Request("web", 200, time.Millisecond)
	}
}

func TestAccessLogDroppedMetric(t *testing.T) {
	m := NewMetrics()
	m.AccessLogDropped(func() uint64 { return 7 })
	s := startAdmin(t, Options{Metrics: m})
	if _, body := get(t, "http://"+s.Addr().String()+"/metrics"); !strings.Contains(body, "fedigate_accesslog_dropped_lines_total 7") {
		t.Errorf("metrics lack the dropped lines:\n%s", body)
	}
}

package accesslog

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

// slogLine is what the proxy wrote before this package: the same record
// through slog's own handler.
func slogLine(f Format, l *Line) string {
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if f == JSON {
		h = slog.NewJSONHandler(&buf, nil)
	}
	r := slog.NewRecord(l.Time, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("client", l.Client.String()),
		slog.String("method", l.Method),
		slog.String("path", l.Path),
		slog.Int("status", l.Status),
		slog.Int64("bytes", l.Bytes),
		slog.Duration("duration", l.Duration),
		slog.String("route", l.Route))
	for _, x := range l.Extra {
		if x.isNum {
			r.AddAttrs(slog.Int64(x.Key, x.num))
		} else {
			r.AddAttrs(slog.String(x.Key, x.str))
		}
	}
	_ = h.Handle(context.Background(), r)
	return buf.String()
}

func checkSame(t *testing.T, l *Line) {
	t.Helper()
	for _, f := range []Format{Text, JSON} {
		got := string(appendLine(nil, f, l))
		if want := slogLine(f, l); got != want {
			t.Errorf("format %d:\n got %q\nwant %q", f, got, want)
		}
	}
}

func sampleLine() Line {
	return Line{
		Time:   time.Date(2026, 12, 1, 22, 35, 11, 123456789, time.UTC),
		Client: netip.MustParseAddr("203.0.113.7"), Method: "GET", Path: "/api/v1/timelines/home",
		Status: 200, Bytes: 5120, Duration: 1234567 * time.Nanosecond, Route: "web",
	}
}

func TestLineSameAsSlog(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	west := time.FixedZone("west", -8*3600)
	rows := []struct {
		name string
		edit func(*Line)
	}{
		{"plain", func(*Line) {}},
		{"ipv6 client", func(l *Line) { l.Client = netip.MustParseAddr("2001:db8::1") }},
		{"ipv4-mapped client", func(l *Line) { l.Client = netip.MustParseAddr("::ffff:192.0.2.1") }},
		{"no client", func(l *Line) { l.Client = netip.Addr{} }},
		{"zoned client", func(l *Line) { l.Client = netip.MustParseAddr("fe80::1%eth0") }},
		{"zone injection", func(l *Line) { l.Client = netip.MustParseAddr("fe80::1%x level=ERROR\n") }},
		{"path newline injection", func(l *Line) { l.Path = "/x\ntime=0 level=ERROR msg=forged" }},
		{"path quote and equals", func(l *Line) { l.Path = `/a="b"\c` }},
		{"path empty", func(l *Line) { l.Path = "" }},
		{"path control bytes", func(l *Line) { l.Path = "/\x00\x01\x1f\x7f\t\r" }},
		{"path invalid utf8", func(l *Line) { l.Path = "/\xff\xfe\xc3" }},
		{"path unicode", func(l *Line) { l.Path = "/@zoë/😀/\u00a0/\u2028\u2029/\u200b" }},
		{"path html", func(l *Line) { l.Path = "/<script>&amp;" }},
		{"status 499 and empty route", func(l *Line) { l.Status, l.Route = 499, "" }},
		{"zero duration and bytes", func(l *Line) { l.Duration, l.Bytes = 0, 0 }},
		{"nanoseconds", func(l *Line) { l.Duration = 999 }},
		{"microseconds", func(l *Line) { l.Duration = 1500 }},
		{"long request", func(l *Line) { l.Duration = 3*time.Hour + 2*time.Minute + 1500*time.Millisecond }},
		{"negative duration", func(l *Line) { l.Duration = -time.Second }},
		{"whole millisecond", func(l *Line) { l.Time = l.Time.Truncate(time.Millisecond) }},
		{"whole second", func(l *Line) { l.Time = l.Time.Truncate(time.Second) }},
		{"zone east", func(l *Line) { l.Time = l.Time.In(east) }},
		{"zone west", func(l *Line) { l.Time = l.Time.In(west) }},
		{"monotonic clock", func(l *Line) { l.Time = time.Now() }},
		{"extra fields", func(l *Line) { l.Extra = []Field{String("cache", "hit"), Int("age", 42)} }},
		{"extra odd key", func(l *Line) { l.Extra = []Field{String("a key", ""), String("k=", "v\"")} }},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			l := sampleLine()
			row.edit(&l)
			checkSame(t, &l)
		})
	}
}

func FuzzLineSameAsSlog(f *testing.F) {
	f.Add("GET", "/", "web", "cache", "hit", "1.2.3.4", 200, int64(10), int64(1500), int64(1e18), 0)
	f.Add("PO ST", "/a\nb", "", "", "", "fe80::1%z", 499, int64(-1), int64(-5), int64(0), -3600)
	f.Fuzz(func(t *testing.T, method, path, route, key, val, client string, status int, n, dur, unix int64, offset int) {
		l := Line{
			Time:   time.Unix(0, unix).In(time.FixedZone("z", offset%(24*3600))),
			Method: method, Path: path, Status: status, Bytes: n, Duration: time.Duration(dur), Route: route,
		}
		if y := l.Time.Year(); y < 0 || y >= 10000 {
			return // slog writes an error there; time.Now never gets there
		}
		l.Client, _ = netip.ParseAddr(client)
		if key != "" {
			l.Extra = []Field{String(key, val), Int(key+"n", n)}
		}
		checkSame(t, &l)
	})
}

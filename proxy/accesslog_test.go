package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/internal/accesslog"
)

// masked drops what differs between two runs of one request: the time and
// the duration.
var masked = regexp.MustCompile(`time=\S+ |duration=\S+ `)

// Options.AccessLog writes the very line the Logger path writes, for
// answers of the backend and of the edge, a log-injection path included.
func TestAccessLogWriterSameLineAsLogger(t *testing.T) {
	be, _ := recordingBackend(t)
	viaSlog := startEdge(t, testConfig(t, be.URL, ""), Options{})
	var out logBuffer
	w, err := accesslog.New(&out, accesslog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	viaWriter := startEdge(t, testConfig(t, be.URL, ""), Options{AccessLog: w})
	paths := []string{"/users/a/inbox?x=1", "/%0Atime=0%20level=ERROR", "/a/../b", "/%22quoted%22%3D"}
	for _, te := range []*testEdge{viaSlog, viaWriter} {
		for _, p := range paths {
			_, _ = get(t, te.client(false), te.base+p, nil)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.SplitAfter(viaSlog.logs.String(), "\n") {
		if strings.Contains(l, "msg=request ") {
			want = append(want, masked.ReplaceAllString(l, ""))
		}
	}
	got := strings.SplitAfter(out.String(), "\n")
	got = got[:len(got)-1] // after the last newline
	if len(got) != len(paths) || len(want) != len(paths) {
		t.Fatalf("%d and %d lines for %d requests:\n%s\n%s", len(got), len(want), len(paths), out.String(), viaSlog.logs.String())
	}
	for i := range got {
		if g := masked.ReplaceAllString(got[i], ""); g != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, g, want[i])
		}
	}
	if strings.Contains(out.String(), "\ntime=0") {
		t.Errorf("a path forged a line:\n%s", out.String())
	}
}

// BenchmarkAccessLog is one request through the whole chain in-process
// with the access log off, through slog, and through accesslog.Writer.
func BenchmarkAccessLog(b *testing.B) {
	be := smallJSONBackend(b)
	aw, err := accesslog.New(io.Discard, accesslog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = aw.Close(context.Background()) })
	discard := slog.New(slog.DiscardHandler)
	b.Run("off", func(b *testing.B) { benchHandler(b, be, Options{Logger: discard}, http.MethodGet) })
	b.Run("slog", func(b *testing.B) {
		benchHandler(b, be, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, http.MethodGet)
	})
	b.Run("writer", func(b *testing.B) { benchHandler(b, be, Options{Logger: discard, AccessLog: aw}, http.MethodGet) })
}

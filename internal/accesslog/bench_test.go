package accesslog

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkLog is one access line through the Writer: 0 allocations.
func BenchmarkLog(b *testing.B) {
	for _, f := range []struct {
		name string
		f    Format
	}{{"text", Text}, {"json", JSON}} {
		b.Run(f.name, func(b *testing.B) {
			w, err := New(io.Discard, Options{Format: f.f, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close(context.Background())
			l := sampleLine()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w.Log(&l)
				}
			})
			// Two producers on two cores log millions of lines a second,
			// far past any edge's rate, and the flusher is not always
			// scheduled before 2 MB wait: drops here are the design's
			// answer (never block a request), reported, not a failure.
			b.ReportMetric(float64(w.Dropped())/float64(b.N), "drops/op")
		})
	}
}

// BenchmarkLogExtra is a line with two extra fields, built in the loop as
// the proxy would.
func BenchmarkLogExtra(b *testing.B) {
	w, err := New(io.Discard, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		l := sampleLine()
		l.Extra = []Field{String("cache", "hit"), Int("age", 42)}
		w.Log(&l)
	}
}

// BenchmarkSlogLine is the line as the proxy wrote it before, through
// slog's text handler, to compare.
func BenchmarkSlogLine(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := sampleLine()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			log.LogAttrs(context.Background(), slog.LevelInfo, "request",
				slog.String("client", l.Client.String()),
				slog.String("method", l.Method),
				slog.String("path", l.Path),
				slog.Int("status", l.Status),
				slog.Int64("bytes", l.Bytes),
				slog.Duration("duration", l.Duration),
				slog.String("route", l.Route))
		}
	})
}

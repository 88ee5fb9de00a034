package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/accesslog"
)

// accessLogClose is how long shutdown waits for the access log's last
// lines on a stuck output before exiting without them.
const accessLogClose = 5 * time.Second

// lockedWriter makes each Write whole: the main log's lines and the
// access log's chunks share stderr and never cut into each other.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// newAccessLog is the access log over out, in log.format; nil when
// log.level is above info (no access lines), as the slog path would.
func newAccessLog(c configs.Log, out io.Writer, log *slog.Logger) (*accesslog.Writer, error) {
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return nil, nil
	}
	f := accesslog.Text
	if c.Format == "json" {
		f = accesslog.JSON
	}
	return accesslog.New(out, accesslog.Options{Format: f, Logger: log})
}

// flushAccessLog writes out the queued access lines (before a reload is
// logged), waiting at most a second on a stuck output.
func flushAccessLog(w *accesslog.Writer, log *slog.Logger) {
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		log.Warn("access log: flush before reload", "err", err)
	}
}

// closeAccessLog writes out the last access lines and stops the writer.
func closeAccessLog(w *accesslog.Writer, log *slog.Logger) {
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), accessLogClose)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		log.Warn("access log: last lines not written", "err", err, "dropped_total", w.Dropped())
	}
}

// Package accesslog owns fedigate's access log: one line per request,
// formatted by hand into reused buffers (the very bytes slog's text or JSON
// handler would write, so readers of the log see no change), gathered in a
// bounded memory buffer and written out by one background goroutine every
// FlushInterval, whenever a chunk fills, on Flush (reload) and on Close
// (shutdown). A request never waits for the disk: when the buffer is full,
// its line is dropped and counted, and the first drop of a run of them is
// logged once.
//
// The proxy fills a Line at the end of each request (proxy/chain.go,
// finish); cmd/fedigate builds the Writer over stderr (behind the lock it
// shares with the main logger, so that a chunk and a log line never cut
// into each other), exports Dropped as a metric (admin), flushes it on
// reload and closes it on shutdown.
package accesslog

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultBufferBytes   = 2 << 20  // about a second of lines at 15k req/s
	DefaultChunkBytes    = 64 << 10 // a write starts when this much waits
)

// recoverAfter is how long no line may be dropped before a run of drops
// counts as over: an output that stalls on and off is reported once, not
// at every flush.
const recoverAfter = time.Second

// Options tune a Writer; the zero value is the defaults.
type Options struct {
	Format        Format        // Text (zero) or JSON, as log.format
	FlushInterval time.Duration // 0: DefaultFlushInterval
	BufferBytes   int           // lines held before dropping; 0: DefaultBufferBytes
	ChunkBytes    int           // 0: DefaultChunkBytes (at most BufferBytes)
	Logger        *slog.Logger  // where drops are reported; nil: slog.Default()
}

// Writer is an access log. Log is safe for concurrent use and never
// blocks on the output. Each chunk is one Write to the output: a shared
// output must make each Write whole.
type Writer struct {
	out      io.Writer
	format   Format
	interval time.Duration
	max      int
	chunk    int
	log      *slog.Logger

	mu     sync.Mutex
	buf    []byte // lines waiting
	lost   int    // lines dropped since the flusher last took buf
	closed bool

	spare      []byte    // the flusher's: the last buf taken, written outside mu
	cleanSince time.Time // the flusher's: no line dropped since then; zero: one was
	scratch    sync.Pool

	dropped  atomic.Uint64
	dropping atomic.Bool // in a run of drops: reported, not yet recovered

	kick    chan struct{}   // a chunk filled
	flushes chan chan error // Flush's requests
	notes   chan note       // to the reporter
	stop    chan struct{}
	done    chan struct{} // the flusher has written all and returned
	once    sync.Once
}

// note is what the reporter logs: the start of a run of drops, or its end.
type note struct {
	recovered bool
	start     uint64 // lines dropped since New before the run began
	total     uint64 // lines dropped since New, when it was sent
	err       error  // the write error that lost lines, if one did
}

// New makes a Writer over out and starts its goroutines; Close stops them.
func New(out io.Writer, opts Options) (*Writer, error) {
	if out == nil {
		return nil, errors.New("accesslog: nil output")
	}
	if opts.Format != Text && opts.Format != JSON {
		return nil, errors.New("accesslog: unknown format")
	}
	if opts.FlushInterval < 0 || opts.BufferBytes < 0 || opts.ChunkBytes < 0 {
		return nil, errors.New("accesslog: negative option")
	}
	w := &Writer{
		out:      out,
		format:   opts.Format,
		interval: cmp.Or(opts.FlushInterval, DefaultFlushInterval),
		max:      cmp.Or(opts.BufferBytes, DefaultBufferBytes),
		log:      cmp.Or(opts.Logger, slog.Default()),
		kick:     make(chan struct{}, 1),
		flushes:  make(chan chan error),
		notes:    make(chan note, 8),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	w.chunk = min(cmp.Or(opts.ChunkBytes, DefaultChunkBytes), w.max)
	w.buf = make([]byte, 0, w.chunk)
	w.spare = make([]byte, 0, w.chunk)
	w.scratch.New = func() any { b := make([]byte, 0, 512); return &b }
	go w.run()
	go w.report()
	return w, nil
}

// Log formats l and queues it; when the buffer is full (or the Writer is
// closed) the line is dropped and counted instead.
func (w *Writer) Log(l *Line) {
	p := w.scratch.Get().(*[]byte)
	b := appendLine((*p)[:0], w.format, l)
	w.mu.Lock()
	switch {
	case w.closed: // shutting down: counted, not reported
		w.mu.Unlock()
		w.dropped.Add(1)
	case len(w.buf)+len(b) > w.max:
		w.lost++
		w.mu.Unlock()
		w.drop(1, nil)
	default:
		w.buf = append(w.buf, b...)
		full := len(w.buf) >= w.chunk
		w.mu.Unlock()
		if full {
			select {
			case w.kick <- struct{}{}:
				// on a saturated CPU the flusher would wait for the next
				// preemption (10 ms), long enough to fill the buffer
				runtime.Gosched()
			default:
			}
		}
	}
	if cap(b) <= 64<<10 { // a huge line's buffer is not kept
		*p = b
		w.scratch.Put(p)
	}
}

// Dropped is how many lines were dropped since New.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Flush writes out every line logged before it; it gives up when ctx ends
// (the output is stuck), and the lines stay queued.
func (w *Writer) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case w.flushes <- reply:
	case <-w.done:
		return errors.New("accesslog: closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes out what is queued and stops the Writer; later lines are
// dropped. It gives up waiting when ctx ends.
func (w *Writer) Close(ctx context.Context) error {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
	})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the flusher: it writes the buffer on each tick, when a chunk
// fills, and when asked.
func (w *Writer) run() {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	defer close(w.done)
	for {
		select {
		case <-t.C:
		case <-w.kick:
		case reply := <-w.flushes:
			reply <- w.flush()
			continue
		case <-w.stop:
			_ = w.flush()
			return
		}
		_ = w.flush()
	}
}

// flush takes the buffer and writes it. A run of drops has ended when no
// line was dropped for recoverAfter.
func (w *Writer) flush() error {
	w.mu.Lock()
	w.buf, w.spare = w.spare[:0], w.buf
	lost := w.lost
	w.lost = 0
	w.mu.Unlock()
	switch now := time.Now(); {
	case lost > 0:
		w.cleanSince = time.Time{}
	case w.cleanSince.IsZero():
		w.cleanSince = now
	case now.Sub(w.cleanSince) >= recoverAfter && w.dropping.CompareAndSwap(true, false):
		w.send(note{recovered: true, total: w.dropped.Load()})
	}
	if len(w.spare) == 0 {
		return nil
	}
	_, err := w.out.Write(w.spare)
	if err != nil {
		w.cleanSince = time.Time{}
		w.drop(bytes.Count(w.spare, []byte{'\n'}), err)
		return err
	}
	if cap(w.spare) > 4*w.chunk && len(w.spare) < w.chunk {
		w.spare = make([]byte, 0, w.chunk) // shrink after a burst
	}
	return nil
}

// drop counts n lost lines and reports the first of a run.
func (w *Writer) drop(n int, err error) {
	total := w.dropped.Add(uint64(n))
	if w.dropping.CompareAndSwap(false, true) {
		w.send(note{total: total, start: total - uint64(n), err: err})
	}
}

// send hands a note to the reporter without waiting: Log's callers must
// never block on the log.
func (w *Writer) send(n note) {
	select {
	case w.notes <- n:
	default:
	}
}

// report logs the notes, on its own goroutine, so that a logger stuck on
// the same output stalls neither requests nor the flusher.
func (w *Writer) report() {
	var start uint64
	for {
		var n note
		select {
		case n = <-w.notes:
		case <-w.done:
			return
		}
		if n.recovered {
			w.log.Info("access log: writing again", "dropped", n.total-start)
			continue
		}
		start = n.start
		if n.err != nil {
			w.log.Warn("access log: write failed, lines lost", "err", n.err, "dropped_total", n.total)
			continue
		}
		w.log.Warn("access log: buffer full, dropping lines until the output keeps up",
			"buffer_bytes", w.max, "dropped_total", n.total, "metric", "fedigate_accesslog_dropped_lines_total")
	}
}

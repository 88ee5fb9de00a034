package accesslog

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

func newWriter(t *testing.T, out io.Writer, opts Options) *Writer {
	t.Helper()
	w, err := New(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for name, tc := range map[string]struct {
		out  io.Writer
		opts Options
	}{
		"nil output":       {nil, Options{}},
		"unknown format":   {io.Discard, Options{Format: 7}},
		"negative buffer":  {io.Discard, Options{BufferBytes: -1}},
		"negative chunk":   {io.Discard, Options{ChunkBytes: -1}},
		"negative seconds": {io.Discard, Options{FlushInterval: -time.Second}},
	} {
		if _, err := New(tc.out, tc.opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Every line logged from many goroutines is written by Close, none torn:
// the SIGTERM path.
func TestCloseWritesEveryLine(t *testing.T) {
	var out testenv.LogBuffer
	w, err := New(&out, Options{FlushInterval: time.Hour, ChunkBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				l := sampleLine()
				l.Path = "/g" + strconv.Itoa(g) + "/" + strconv.Itoa(i)
				w.Log(&l)
			}
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != goroutines*each || w.Dropped() != 0 {
		t.Fatalf("%d lines, %d dropped; want %d, 0", len(lines), w.Dropped(), goroutines*each)
	}
	seen := map[string]bool{}
	for _, s := range lines {
		if !strings.HasPrefix(s, "time=") || !strings.HasSuffix(s, " route=web") {
			t.Fatalf("torn line %q", s)
		}
		seen[s[strings.Index(s, "path="):]] = true
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d distinct lines", len(seen))
	}
	l := sampleLine()
	w.Log(&l) // after Close: dropped, counted
	if w.Dropped() != 1 || strings.Count(out.String(), "\n") != goroutines*each {
		t.Fatalf("a line after Close: dropped %d", w.Dropped())
	}
}

// Flush writes what waits, before any timer (the reload path).
func TestFlushWritesQueuedLines(t *testing.T) {
	var out testenv.LogBuffer
	w := newWriter(t, &out, Options{FlushInterval: time.Hour, Format: JSON})
	l := sampleLine()
	w.Log(&l)
	w.Log(&l)
	if out.String() != "" {
		t.Fatal("written before a flush")
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat(slogLine(JSON, &l), 2); out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
}

// Lines reach the output on the timer alone, and when a chunk fills.
func TestTimerAndChunkFlush(t *testing.T) {
	var out testenv.LogBuffer
	w := newWriter(t, &out, Options{FlushInterval: 20 * time.Millisecond})
	l := sampleLine()
	w.Log(&l)
	waitFor(t, "the timer writes the line", func() bool { return out.String() == slogLine(Text, &l) })

	var full testenv.LogBuffer
	w = newWriter(t, &full, Options{FlushInterval: time.Hour, ChunkBytes: 1024})
	for range 1024/len(slogLine(Text, &l)) + 1 {
		w.Log(&l)
	}
	waitFor(t, "a full chunk is written", func() bool { return full.String() != "" })
}

// valve is the reading end of a pipe, read only while open: closed, the
// pipe fills and the Writer's write blocks, as on a stuck disk.
type valve struct {
	mu   sync.Mutex
	cond *sync.Cond
	open bool
}

func readThrough(t *testing.T, r *os.File) *valve {
	v := &valve{}
	v.cond = sync.NewCond(&v.mu)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			v.mu.Lock()
			for !v.open {
				v.cond.Wait()
			}
			v.mu.Unlock()
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { v.set(true); _ = r.Close() })
	return v
}

func (v *valve) set(open bool) {
	v.mu.Lock()
	v.open = open
	v.mu.Unlock()
	v.cond.Broadcast()
}

// floodUntilDrops logs lines until some are dropped; each Log must return
// promptly although the output does not move.
func floodUntilDrops(t *testing.T, w *Writer) {
	t.Helper()
	before := w.Dropped()
	l := sampleLine()
	for i := 0; w.Dropped() < before+100; i++ {
		start := time.Now()
		w.Log(&l)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Log blocked %v on a stuck output", d)
		}
		if i > 1e6 {
			t.Fatal("a million lines and no drop")
		}
		if i%256 == 0 {
			runtime.Gosched()
		}
	}
}

// A slow disk or a pipe nobody reads never blocks a request: lines are
// dropped, counted, and the run of drops is logged once; once the output
// moves again that is logged, and a new run is logged once more.
func TestStuckOutputDropsNeverBlocks(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	v := readThrough(t, r)
	var logs testenv.LogBuffer
	w := newWriter(t, pw, Options{FlushInterval: 10 * time.Millisecond, BufferBytes: 32 << 10, ChunkBytes: 4 << 10,
		Logger: logs.Logger()})
	warns := func() int { return strings.Count(logs.String(), "buffer full") }

	floodUntilDrops(t, w)
	waitFor(t, "the drop is logged", func() bool { return warns() == 1 })
	floodUntilDrops(t, w) // still stuck: not logged again
	time.Sleep(50 * time.Millisecond)
	if warns() != 1 {
		t.Fatalf("%d warnings for one run of drops:\n%s", warns(), logs.String())
	}

	v.set(true)
	waitFor(t, "the recovery is logged", func() bool { return strings.Contains(logs.String(), "writing again") })
	v.set(false)
	floodUntilDrops(t, w)
	waitFor(t, "the second run is logged", func() bool { return warns() == 2 })
	if !strings.Contains(logs.String(), "dropped_total=") {
		t.Errorf("no count in the warning:\n%s", logs.String())
	}
	v.set(true)
}

// A failing output loses the lines of the failed write: counted, logged.
func TestWriteErrorCountsLostLines(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close() // every write: EPIPE
	defer pw.Close()
	var logs testenv.LogBuffer
	w := newWriter(t, pw, Options{FlushInterval: time.Hour, Logger: logs.Logger()})
	l := sampleLine()
	for range 10 {
		w.Log(&l)
	}
	if err := w.Flush(context.Background()); err == nil {
		t.Fatal("Flush to a closed pipe: no error")
	}
	if w.Dropped() != 10 {
		t.Fatalf("dropped %d, want 10", w.Dropped())
	}
	waitFor(t, "the write error is logged", func() bool { return strings.Contains(logs.String(), "write failed") })
}

// Flush and Close give up on a stuck output when their context ends.
func TestFlushAndCloseGiveUpOnStuckOutput(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	v := readThrough(t, r)
	w := newWriter(t, pw, Options{FlushInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	l := sampleLine()
	for range 2000 { // more than the pipe holds
		w.Log(&l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Flush(ctx); err == nil {
		t.Fatal("Flush returned on a stuck output")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := w.Close(ctx2); err == nil {
		t.Fatal("Close returned on a stuck output")
	}
	v.set(true)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

package federation

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// blockState is the blocklist as last read well, shared by the Guards
// built from one another by Reconfigure while the path is the same.
type blockState struct {
	path    string
	cur     atomic.Pointer[blocklist]
	mu      sync.Mutex // one read at a time
	lastErr string     // the last fault logged, so a broken file is logged once per change
}

// loadBlocks reads path. With old (the same path, already loaded) a
// broken file keeps old's list and is logged; without, it is an error.
func loadBlocks(path string, old *blockState, log *slog.Logger) (*blockState, error) {
	if old != nil {
		_ = old.reload(log) // logged; the last good list stays
		return old, nil
	}
	b, err := readBlocklist(path)
	if err != nil {
		return nil, err
	}
	s := &blockState{path: path}
	s.cur.Store(b)
	log.Info("federation blocklist loaded", "file", path, "rows", b.rows, "suspended", b.suspended)
	return s, nil
}

func (s *blockState) current() *blocklist { return s.cur.Load() }

// reload reads the file again; on a fault the last good list stays.
func (s *blockState) reload(log *slog.Logger) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := readBlocklist(s.path)
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			last := s.cur.Load()
			log.Warn("federation blocklist not reloaded: the last good list stays", "file", s.path, "suspended", last.suspended, "error", msg)
		}
		return err
	}
	s.lastErr = ""
	s.cur.Store(b)
	log.Info("federation blocklist loaded", "file", s.path, "rows", b.rows, "suspended", b.suspended)
	return nil
}

// reloadIfChanged reloads when the file's size, time or identity changed.
func (s *blockState) reloadIfChanged(log *slog.Logger) {
	st, err := os.Stat(s.path)
	if err == nil && s.cur.Load().stamp.same(st) {
		return
	}
	if err != nil {
		s.mu.Lock()
		msg := err.Error()
		if msg != s.lastErr {
			s.lastErr = msg
			log.Warn("federation blocklist not reloaded: the last good list stays", "file", s.path, "error", msg)
		}
		s.mu.Unlock()
		return
	}
	_ = s.reload(log)
}

package signupgate

import (
	"log/slog"
	"sync"
	"time"
)

// surge watches sign-up attempts across all clients. More than threshold
// within window turns lock-down on for hold: the difficulty rises and API
// sign-up is refused. It turns itself off when hold has passed without a
// new surge. Attempts are counted in 60 buckets of window/60.
type surge struct {
	threshold int
	window    time.Duration
	hold      time.Duration
	log       *slog.Logger
	onChange  func(bool)

	mu      sync.Mutex
	buckets [60]int
	stamps  [60]int64 // bucket number each slot holds
	onUntil time.Time
	on      bool
}

// attempt records one sign-up attempt at now.
func (s *surge) attempt(now time.Time) {
	if s.threshold <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	width := s.window / 60
	n := now.UnixNano() / int64(width)
	slot := n % 60
	if s.stamps[slot] != n {
		s.stamps[slot], s.buckets[slot] = n, 0
	}
	s.buckets[slot]++
	total := 0
	for i := range s.buckets {
		if n-s.stamps[i] < 60 {
			total += s.buckets[i]
		}
	}
	if total > s.threshold {
		s.onUntil = now.Add(s.hold)
		s.set(true, total)
	}
}

// active reports whether lock-down is on at now (and ends it when due).
func (s *surge) active(now time.Time) bool {
	if s.threshold <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.on && !now.Before(s.onUntil) {
		s.set(false, 0)
	}
	return s.on
}

func (s *surge) set(on bool, count int) {
	if s.on == on {
		return
	}
	s.on = on
	if on {
		s.log.Warn("sign-up surge: lock-down on", "attempts", count, "window", s.window, "hold", s.hold)
	} else {
		s.log.Info("sign-up surge: lock-down off")
	}
	if s.onChange != nil {
		s.onChange(on)
	}
}

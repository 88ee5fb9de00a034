package admin

import (
	"sync"
	"time"
)

// Refusal is one request the edge refused, as the status page lists it.
type Refusal struct {
	T      int64  `json:"t"`      // Unix seconds
	Status int    `json:"status"` // what the client got
	Rule   string `json:"rule"`   // the rate-limit rule, or "signup: <reason>"
}

// refusals keeps the last few refusals in a fixed ring; the oldest is
// overwritten. It holds no client address: the page shows why, not who.
type refusals struct {
	mu   sync.Mutex
	ring [refusalsKept]Refusal
	next int
	n    int
}

const refusalsKept = 50

func (r *refusals) add(status int, rule string) {
	now := time.Now().Unix()
	r.mu.Lock()
	r.ring[r.next] = Refusal{T: now, Status: status, Rule: rule}
	r.next = (r.next + 1) % refusalsKept
	r.n = min(r.n+1, refusalsKept)
	r.mu.Unlock()
}

// last returns the refusals kept, newest first.
func (r *refusals) last() []Refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Refusal, r.n)
	for i := range r.n {
		out[i] = r.ring[(r.next-1-i+refusalsKept)%refusalsKept]
	}
	return out
}

package ratelimit

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/fedigate/fedigate/internal/backendroute"
)

// Bodies of the refusals (the public half; the cause goes to the log).
const (
	bodyTooMany     = `{"error":"Too many requests"}` + "\n"
	bodyUnavailable = `{"error":"Service temporarily unavailable"}` + "\n"
)

// resetFormat is ISO 8601 in UTC with microseconds, as Mastodon sends
// X-RateLimit-Reset.
const resetFormat = "2006-01-02T15:04:05.000000Z"

// Middleware counts each request against every rule whose methods and
// path it matches (an exempt client, and for unauthenticated rules a
// request with credentials, is not counted). Over any limit it answers
// 429 itself and next never runs; when the store fails, on_store_error
// decides (deny: 503). Counted responses carry X-RateLimit-Limit,
// -Remaining and -Reset of the tightest matching rule.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var matched [maxMatch]int
		n := l.match(r, &matched)
		if n == 0 {
			next.ServeHTTP(w, r)
			return
		}
		client := l.clientAddr(r)
		plain := client.Unmap()
		m, authChecked, authed := 0, false, false
		for _, i := range matched[:n] {
			rl := &l.rules[i]
			if l.exempted(rl, plain) {
				continue
			}
			if rl.unauthenticated {
				if !authChecked {
					authChecked, authed = true, l.signedIn(r)
				}
				if authed {
					continue
				}
			}
			matched[m] = i
			m++
		}
		if m == 0 {
			next.ServeHTTP(w, r)
			return
		}
		var out [maxMatch]Result
		idx := matched[:m]
		allowed, err := l.decide(r.Context(), idx, client, out[:m])
		_, counted := l.keyer.key(client)
		if err != nil {
			for j, i := range idx {
				out[j] = l.storeFailed(&l.rules[i])
			}
			allowed = !l.deny
		}
		if l.opts.Observe != nil {
			for j, i := range idx {
				if err == nil && !allowed && !refusedBy(out[j]) {
					continue // refused by another rule: not counted by this one
				}
				l.opts.Observe(Decision{Rule: l.rules[i].name, Client: counted, Result: out[j], Err: err})
			}
		}
		switch {
		case err != nil && !allowed:
			l.log.LogAttrs(r.Context(), slog.LevelInfo, "rate limit store unavailable: request refused",
				slog.String("rule", l.rules[idx[0]].name), slog.String("client", l.keyer.text(counted)),
				slog.String("error", err.Error()))
			h := w.Header()
			h.Set("Retry-After", retryAfterSeconds(l.opts.ProbeInterval))
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(bodyUnavailable))
			return
		case err != nil:
			next.ServeHTTP(w, r)
			return
		}
		t := tightest(out[:m], allowed)
		rl, res := &l.rules[idx[t]], out[t]
		h := w.Header()
		setRateLimitHeaders(h, rl.limitText, res)
		if allowed {
			next.ServeHTTP(w, r)
			return
		}
		ra := retryAfterSeconds(res.RetryAfter)
		l.log.LogAttrs(r.Context(), slog.LevelInfo, "rate limited",
			slog.String("rule", rl.name), slog.String("client", l.keyer.text(counted)),
			slog.Int("limit", rl.limit), slog.Duration("period", rl.period), slog.String("retry_after", ra))
		h.Set("Retry-After", ra)
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(bodyTooMany))
	})
}

// refusedBy reports whether a rule's result of a refused request is its
// own refusal (the client at its limit), not another rule's: a request
// is counted by all the rules it matches or by none.
func refusedBy(res Result) bool { return res.Remaining <= 0 }

// Canonical header keys, so setting them needs no canonicalisation.
const (
	hdrLimit     = "X-Ratelimit-Limit"
	hdrRemaining = "X-Ratelimit-Remaining"
	hdrReset     = "X-Ratelimit-Reset"
)

// setRateLimitHeaders sets X-RateLimit-Limit, -Remaining and -Reset with
// one allocation for the three values' slices.
func setRateLimitHeaders(h http.Header, limit string, res Result) {
	v := make([]string, 3)
	v[0], v[1] = limit, strconv.Itoa(res.Remaining)
	var buf [32]byte
	v[2] = string(res.Reset.UTC().AppendFormat(buf[:0], resetFormat))
	h[hdrLimit], h[hdrRemaining], h[hdrReset] = v[0:1:1], v[1:2:2], v[2:3:3]
}

// match fills matched with the indexes of the rules whose method and path
// r matches and returns how many there are. A POST also counts under the
// rules of the method a method override makes of it (Mastodon's password
// change form is POST /auth with "_method=put"), and under every rule of
// its path when the override is ambiguous; the override (which may mean
// reading a small form body) is read only when a rule of the path needs
// it.
func (l *Limiter) match(r *http.Request, matched *[maxMatch]int) int {
	f := backendroute.Of(r)
	var o backendroute.Override
	read := r.Method != http.MethodPost
	n := 0
	for i := range l.rules {
		c := &l.rules[i]
		if !c.matchPath(f.Path) {
			continue
		}
		ok := c.matchMethod(r.Method)
		if !ok && !read {
			o, read = f.MethodOverride(r), true
		}
		if ok || c.matchOverride(o) {
			matched[n] = i
			n++
		}
	}
	return n
}

// tightest picks the result whose headers a response carries: when
// refused, the refused rule that frees up last; else the rule with the
// fewest requests left.
func tightest(out []Result, allowed bool) int {
	best := 0
	for j := 1; j < len(out); j++ {
		if allowed {
			if out[j].Remaining < out[best].Remaining {
				best = j
			}
		} else if out[j].RetryAfter > out[best].RetryAfter {
			best = j
		}
	}
	return best
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(s, 1)), 10)
}

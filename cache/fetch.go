package cache

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// flight is one fetch that other misses of the same key wait for.
type flight struct {
	done chan struct{}
	obj  *Object   // what it stored; nil = the waiters go to the backend
	pass time.Time // a closed flight kept until then: the key's answers are not storable, do not wait
}

// passFor is how long a key whose answer was not storable is fetched
// without waiting for others (Varnish's hit-for-miss).
const passFor = 10 * time.Second

// maxFlights bounds the flight table (closed "pass" flights are dropped
// first when it is full).
const maxFlights = 1 << 14

// defaultVary are the fields misses are told apart by before any answer
// says what it varies on: two misses wait for one fetch only when these
// agree (Mastodon varies on Accept, Accept-Language and Cookie; the edge's
// gzip on Accept-Encoding; the API on Authorization). Signature is not
// among them: every fetching instance signs its own, and an answer that
// varies on it (AUTHORIZED_FETCH) sends the waiters on.
var defaultVary = []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cookie"}

// miss fetches r from the backend: coalesced with other misses of the
// key when r is a plain GET, alone otherwise.
func (h *handler) miss(w http.ResponseWriter, r *http.Request, lk lookup) {
	c := h.c
	if r.Method == http.MethodHead || (lk.obj == nil && hasConditionOrRange(r.Header)) {
		h.fetch(w, r, lk, nil) // the answer is this request's own
		return
	}
	vary := defaultVary
	if lk.entry != nil && len(lk.entry.Variants) > 0 {
		vary = lk.entry.Variants[0].Vary
	}
	fb := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(fb)
	*fb = appendSecondaryKey(append(append((*fb)[:0], lk.key...), 0), vary, r.Header, c.cfg.NormalizeAccept)
	now := lk.now
	c.mu.Lock()
	f := c.flights[string(*fb)] // no copy of the key on a lookup
	switch {
	case f != nil && !f.pass.IsZero() && now.Before(f.pass):
		c.mu.Unlock()
		h.fetch(w, r, lk, nil)
		return
	case f != nil && f.pass.IsZero():
		c.mu.Unlock()
		h.await(w, r, lk, f)
		return
	}
	if len(c.flights) >= maxFlights {
		for k, old := range c.flights {
			if !old.pass.IsZero() {
				delete(c.flights, k)
			}
		}
	}
	fk := string(*fb)
	f = &flight{done: make(chan struct{})}
	c.flights[fk] = f
	c.mu.Unlock()
	land := func(o *Object) {
		c.mu.Lock()
		if c.flights[fk] == f {
			if o == nil {
				c.flights[fk] = &flight{pass: c.now().Add(passFor)}
			} else {
				delete(c.flights, fk)
			}
		}
		c.mu.Unlock()
		f.obj = o
		close(f.done)
	}
	h.fetch(w, r, lk, land)
}

// await waits for f, at most Options.Wait, then answers from what it
// stored or goes to the backend itself.
func (h *handler) await(w http.ResponseWriter, r *http.Request, lk lookup, f *flight) {
	c := h.c
	t := time.NewTimer(time.Duration(c.wait.Load()))
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		h.fetch(w, r, lk, nil)
		return
	case <-r.Context().Done():
		c.report(r, Miss)
		return
	}
	if o := f.obj; o != nil {
		e := &Entry{Variants: []*Object{o}}
		bp := c.bufs.Get().(*[]byte)
		ok := c.selectVariant(e, r.Header, bp) != nil
		c.bufs.Put(bp)
		if ok {
			c.serveObject(w, r, o, c.now(), c.cs.coalesced)
			c.report(r, Coalesced)
			return
		}
	}
	h.fetch(w, r, lk, nil)
}

// fetch sends r to the backend (conditionally when a stored answer with
// validators is being revalidated) and answers the client; land, when
// not nil, is told as early as possible what the fetch stored.
func (h *handler) fetch(w http.ResponseWriter, r *http.Request, lk lookup, land func(*Object)) {
	c := h.c
	out := r
	stale := lk.obj
	if stale != nil {
		out = r.Clone(r.Context())
		for _, k := range [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
			delete(out.Header, k)
		}
		if et := stale.Header["Etag"]; len(et) > 0 {
			out.Header["If-None-Match"] = et
		}
		if lm := stale.Header["Last-Modified"]; len(lm) > 0 {
			out.Header["If-Modified-Since"] = lm
		}
	}
	rec := newRecorder(c, w, r, lk, stale, land)
	finished := false
	defer func() {
		if !finished {
			rec.abandon() // the backend's answer was cut: nothing stored (and rec not reused)
		}
	}()
	h.next.ServeHTTP(rec, out)
	finished = true
	res := rec.finish()
	rec.release()
	if w != nil {
		c.report(r, res)
	}
}

// refresh revalidates lk.obj in the background (stale-while-revalidate):
// one refresh per key at a time.
func (h *handler) refresh(r *http.Request, lk lookup) {
	c := h.c
	fk := "swr\x00" + string(lk.key) + "\x00" + lk.obj.Secondary
	c.mu.Lock()
	if c.flights[fk] != nil {
		c.mu.Unlock()
		return
	}
	f := &flight{done: make(chan struct{})}
	c.flights[fk] = f
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Duration(c.wait.Load()))
	out := r.Clone(ctx)
	out.Method = http.MethodGet
	lk.key = append([]byte(nil), lk.key...)
	go func() {
		defer func() {
			_ = recover() // an answer cut short (http.ErrAbortHandler): nothing stored
			cancel()
			c.mu.Lock()
			delete(c.flights, fk)
			c.mu.Unlock()
			close(f.done)
		}()
		h.fetch(nil, out, lk, nil)
	}()
}

// store keeps o under key in the tier its size and path choose, as the
// newest variant; other variants with the same secondary key go.
func (c *Cache) store(key []byte, hash uint64, path string, o *Object) bool {
	t := c.tierOf(path, o.bodySize())
	if t == nil {
		return false
	}
	if t == c.mem { // a body from a disk file (a 304 updated it) comes into memory
		var err error
		if o, err = o.inMemory(); err != nil {
			return false
		}
	}
	e := &Entry{Key: string(key), Variants: []*Object{o}}
	old := t.Get(hash, key)
	defer old.release() // its variants are copied into the new file, or held in memory
	if old != nil {
		for _, v := range old.Variants {
			if len(e.Variants) == maxVariants {
				break
			}
			if v.Secondary != o.Secondary || !sameNames(v.Vary, o.Vary) {
				e.Variants = append(e.Variants, v)
			}
		}
	}
	if err := t.Set(hash, e); err != nil {
		return false
	}
	for _, other := range []Store{c.mem, c.disk} {
		if other != nil && other != t {
			other.Delete(hash, key)
		}
	}
	return true
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// newObject builds what is stored of an answer: its fields minus Age (sent
// fresh each time) and those private="..." and no-cache="..." name, with
// the times §4.2.3 needs.
func (c *Cache) newObject(r *http.Request, status int, h http.Header, cc Directives, body []byte, reqTime, respTime time.Time) *Object {
	vary, _ := parseVary(h["Vary"])
	sh := make(http.Header, len(h))
	for k, v := range h {
		sh[k] = v
	}
	delete(sh, "Age")
	for _, f := range cc.PrivateHdrs {
		delete(sh, f)
	}
	for _, f := range cc.NoCacheHdrs {
		delete(sh, f)
	}
	date := dateOf(h, respTime)
	o := &Object{
		Vary: vary, Status: status, Header: sh, Body: body, ReqTime: reqTime, RespTime: respTime, CC: cc,
		InitialAge: correctedInitialAge(date, ageValue(h), reqTime, respTime),
		Lifetime:   freshnessLifetime(status, h, cc, date),
		cl:         []string{strconv.Itoa(len(body))},
	}
	o.Secondary = string(appendSecondaryKey(nil, vary, r.Header, c.cfg.NormalizeAccept))
	return o
}

// notUpdated are the fields a 304 does not replace in the stored answer
// (§3.2, §4.3.4): the body's framing and coding, and what the variant is
// keyed on.
var notUpdated = map[string]bool{
	"Content-Length": true, "Content-Encoding": true, "Content-Range": true, "Transfer-Encoding": true,
	"Vary": true, "Set-Cookie": true, "Age": true, "Trailer": true,
}

// updated is o with the fields of a 304 (§4.3.4), or nil when the 304
// names another representation (its validator differs from o's).
func (c *Cache) updated(r *http.Request, o *Object, h http.Header, reqTime, respTime time.Time) *Object {
	if et := h.Get("Etag"); et != "" && !etagMatch(et, o.Header.Get("Etag")) {
		return nil
	}
	if et := h.Get("Etag"); et == "" {
		if lm := h.Get("Last-Modified"); lm != "" && lm != o.Header.Get("Last-Modified") {
			return nil
		}
	}
	nh := make(http.Header, len(o.Header)+4)
	for k, v := range o.Header {
		nh[k] = v
	}
	for k, v := range h {
		if notUpdated[k] || k == "Etag" {
			continue
		}
		nh[k] = v
	}
	cc, err := ParseCacheControl(nh["Cache-Control"])
	if err != nil || cc.NoStore || cc.Private {
		return nil
	}
	n := c.newObject(r, o.Status, nh, cc, o.Body, reqTime, respTime)
	n.Vary, n.Secondary, n.file, n.cl = o.Vary, o.Secondary, o.file, o.cl
	return n
}

package cache

import (
	"hash/maphash"
	"net/http"
	"strings"
	"time"
)

// Handler wraps the web backend: GET and HEAD are answered from the store
// when RFC 9111 allows, misses are fetched once per key and stored when
// the answer allows; an unsafe method goes through and invalidates (§4.4).
// Websocket upgrades go through untouched.
func (c *Cache) Handler(next http.Handler) http.Handler {
	return &handler{c: c, next: next}
}

type handler struct {
	c    *Cache
	next http.Handler
}

// lookup is the state of one GET or HEAD after the store was read.
type lookup struct {
	key   []byte // primary key (in a pooled buffer)
	hash  uint64
	reqCC Directives
	entry *Entry
	obj   *Object // the variant that matches, nil = none
	now   time.Time
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	if _, up := r.Header["Upgrade"]; up {
		h.next.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.unsafe(w, r)
		return
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	lk, ok := c.find(r, bp)
	if !ok {
		c.setStatus(w.Header(), c.cs.bypass)
		h.next.ServeHTTP(w, r)
		c.report(r, Bypass)
		return
	}
	if o := lk.obj; o != nil {
		switch decide(o, lk.reqCC, pragmaNoCache(r.Header), lk.now) {
		case useFresh:
			c.serveObject(w, r, o, lk.now, c.cs.hit)
			lk.entry.release() // nobody else holds what this lookup read
			c.report(r, Hit)
			return
		case useStale:
			c.serveObject(w, r, o, lk.now, c.cs.maxStale)
			lk.entry.release()
			c.report(r, Stale)
			return
		case useSWR:
			h.refresh(r, lk)
			c.serveObject(w, r, o, lk.now, c.cs.swr)
			c.report(r, Stale)
			return
		}
	}
	if lk.reqCC.OnlyIfCached { // §5.2.1.7
		c.setStatus(w.Header(), []string{"fedigate; fwd=miss; detail=only-if-cached"})
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusGatewayTimeout)
		_, _ = w.Write([]byte("gateway timeout: not in the cache (only-if-cached)\n"))
		c.report(r, Miss)
		return
	}
	h.miss(w, r, lk)
}

// find builds the keys of r and reads the stores. false: r is not for the
// cache (no key, or request directives it cannot read).
func (c *Cache) find(r *http.Request, bp *[]byte) (lookup, bool) {
	var lk lookup
	key, ok := appendPrimaryKey((*bp)[:0], r)
	*bp = key
	if !ok {
		return lk, false
	}
	cc, err := ParseCacheControl(r.Header["Cache-Control"])
	if err != nil {
		return lk, false
	}
	lk.key, lk.reqCC, lk.now = key, cc, c.now()
	lk.hash = maphash.Bytes(c.seed, key)
	lk.entry = c.mem.Get(lk.hash, key)
	if lk.entry == nil && c.disk != nil {
		lk.entry = c.disk.Get(lk.hash, key)
	}
	if lk.entry != nil {
		lk.obj = c.selectVariant(lk.entry, r.Header, bp)
	}
	return lk, true
}

// selectVariant is §4.1: of the stored variants whose Vary fields match
// the request's, the most specific (most Vary fields: the edge's gzip adds
// Accept-Encoding only to what it compresses, so a gzip client is given
// the compressed copy, the "known mechanism" §4.1 allows), the newest
// among equals. A request with a cookie matches only a variant that
// varies on Cookie (it is never served an answer kept for others). bp is
// scratch space after the primary key.
func (c *Cache) selectVariant(e *Entry, h http.Header, bp *[]byte) *Object {
	_, cookie := h["Cookie"]
	base := len(*bp)
	defer func() { *bp = (*bp)[:base] }()
	var best *Object
	for _, o := range e.Variants {
		if cookie && !hasName(o.Vary, "Cookie") || best != nil && len(o.Vary) <= len(best.Vary) {
			continue
		}
		sk := appendSecondaryKey((*bp)[:base], o.Vary, h, c.cfg.NormalizeAccept)
		*bp = sk
		if string(sk[base:]) == o.Secondary {
			best = o
		}
	}
	return best
}

func pragmaNoCache(h http.Header) bool {
	if _, ok := h["Cache-Control"]; ok {
		return false // §5.4: Cache-Control wins
	}
	for _, v := range h["Pragma"] {
		if strings.Contains(strings.ToLower(v), "no-cache") {
			return true
		}
	}
	return false
}

func (c *Cache) setStatus(h http.Header, v []string) {
	if c.status == "" {
		return
	}
	if old := h[c.status]; len(old) > 0 {
		h[c.status] = append(old[:len(old):len(old)], v...)
		return
	}
	h[c.status] = v
}

// serveObject answers from o: its fields, Age, Cache-Status; HEAD without
// the body; for a stored 200, conditional requests and ranges (one or
// several, If-Range) as a server would.
func (c *Cache) serveObject(w http.ResponseWriter, r *http.Request, o *Object, now time.Time, cs []string) {
	h := w.Header()
	for k, v := range o.Header {
		h[k] = v
	}
	h["Age"] = c.ageValue(o.age(now))
	c.setStatus(h, cs)
	if o.Status == http.StatusOK && hasConditionOrRange(r.Header) {
		var mod time.Time
		if t, err := http.ParseTime(o.Header.Get("Last-Modified")); err == nil {
			mod = t
		}
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil // never sniffed
		}
		delete(h, "Content-Length")
		http.ServeContent(w, r, "", mod, o.bodyReader())
		return
	}
	h["Content-Length"] = o.cl
	w.WriteHeader(o.Status)
	if r.Method != http.MethodHead {
		_ = o.writeBody(w)
	}
}

func hasConditionOrRange(h http.Header) bool {
	for _, k := range [...]string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// unsafe passes a request of another method through and, when its
// answer's status is a non-error one, invalidates its target and the
// same-host Location and Content-Location (§4.4), before the answer goes
// out (statusWriter).
func (h *handler) unsafe(w http.ResponseWriter, r *http.Request) {
	c := h.c
	sw := &statusWriter{ResponseWriter: w, c: c, r: r}
	defer func() {
		if sw.status == 0 { // no answer (the handler was cut): invalidate anyway
			c.invalidate(r)
		}
	}()
	h.next.ServeHTTP(sw, r)
	c.report(r, Bypass)
}

func (c *Cache) invalidate(r *http.Request, more ...string) {
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	if key, ok := appendPrimaryKey((*bp)[:0], r); ok {
		c.drop(key)
		*bp = key
	}
	for _, loc := range more {
		if loc == "" {
			continue
		}
		u, err := r.URL.Parse(loc)
		if err != nil || (u.Host != "" && !strings.EqualFold(u.Host, r.Host)) {
			continue // §4.4: only the same origin
		}
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		if u.Scheme != "" && u.Scheme+"://" != scheme {
			continue
		}
		if key, ok := appendKey((*bp)[:0], scheme, r.Host, u.EscapedPath(), u.RawQuery, u.ForceQuery); ok {
			c.drop(key)
			*bp = key
		}
	}
}

func (c *Cache) drop(key []byte) {
	hash := maphash.Bytes(c.seed, key)
	c.mem.Delete(hash, key)
	if c.disk != nil {
		c.disk.Delete(hash, key)
	}
}

// statusWriter invalidates what an unsafe request's answer makes stale
// (§4.4) as soon as its status is known: before the answer goes out, so
// the client's next GET cannot find the old copy.
type statusWriter struct {
	http.ResponseWriter
	c      *Cache
	r      *http.Request
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if code >= 200 && s.status == 0 {
		s.status = code
		h := s.ResponseWriter.Header()
		if invalidates(s.r.Method, code) {
			s.c.invalidate(s.r, h.Get("Location"), h.Get("Content-Location"))
		}
		s.c.setStatus(h, s.c.cs.method)
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

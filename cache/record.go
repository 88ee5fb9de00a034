package cache

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// recorder stands between the backend and the client during a fetch: it
// decides at the status line whether the answer is stored, passes it on
// while copying its body, or holds it back when the stored answer is used
// instead (a 304 to a revalidation, an error covered by stale_if_error).
// w nil: a background refresh; nothing is sent anywhere.
type recorder struct {
	c       *Cache
	w       http.ResponseWriter // the client; nil = none
	h       http.Header         // the backend's fields, until decided
	req     *http.Request       // the client's request
	lk      lookup
	stale   *Object       // the stored answer being revalidated, or nil
	land    func(*Object) // the flight, told once; nil = none
	reqTime time.Time     // request_time (§4.2.3)
	resp    time.Time     // response_time
	status  int           // 0 = no status yet
	mode    recMode
	cc      Directives
	body    []byte
	limit   int64
	held    int64 // bytes of the cache's recording budget this answer holds
	want    int64 // Content-Length, -1 = unknown
	stored  bool  // the body was complete and finish's store work is done
	cut     bool  // a write to the client failed, or the body outgrew limit
	refusal Refusal
	landed  bool
}

type recMode uint8

const (
	recPass        recMode = iota // sent to the client, not stored
	recStore                      // sent to the client and copied
	recNotModified                // a 304 to the cache's own validators: held back
	recStaleError                 // an error, the stale answer is served instead: held back
)

// recorders are reused with their field maps: a miss that passes through
// (most API traffic) allocates neither. What a stored Object keeps of a
// recorder (the field values, the body) is never written again: newObject
// copies the map, and a reused map is cleared, not its values.
var recorders = sync.Pool{New: func() any { return &recorder{h: make(http.Header, 16)} }}

func newRecorder(c *Cache, w http.ResponseWriter, r *http.Request, lk lookup, stale *Object, land func(*Object)) *recorder {
	rc := recorders.Get().(*recorder)
	h := rc.h
	*rc = recorder{c: c, w: w, h: h, req: r, lk: lk, stale: stale, land: land, reqTime: c.now()}
	return rc
}

// release hands rc back for reuse once the fetch is over.
func (rc *recorder) release() {
	rc.drop()
	h := rc.h
	clear(h)
	*rc = recorder{h: h}
	recorders.Put(rc)
}

func (rc *recorder) Header() http.Header { return rc.h }

func (rc *recorder) tell(o *Object) {
	if rc.land != nil && !rc.landed {
		rc.landed = true
		rc.land(o)
	}
}

func (rc *recorder) WriteHeader(code int) {
	if code < 200 {
		rc.informational(code)
		return
	}
	if rc.status != 0 {
		return
	}
	c := rc.c
	rc.status, rc.resp = code, c.now()
	if o := rc.stale; o != nil {
		switch {
		case code == http.StatusNotModified:
			rc.mode = recNotModified
			return
		case backendFailed(code) && staleOnError(o, rc.resp, c.cfg.StaleIfError):
			rc.mode = recStaleError
			return
		}
	}
	cc, err := ParseCacheControl(rc.h["Cache-Control"])
	rc.cc = cc
	rc.refusal = storable(rc.req, rc.lk.reqCC, code, rc.h, cc, err)
	rc.limit = c.maxStore(rc.req.URL.Path)
	rc.want = -1
	if rc.refusal == Storable {
		if n, err := strconv.ParseInt(rc.h.Get("Content-Length"), 10, 64); err == nil && n > rc.limit {
			rc.refusal = RefuseTooLarge
		} else if err == nil && n >= 0 {
			rc.want = n
			if rc.hold(n) {
				rc.body = make([]byte, 0, n)
			} else {
				rc.refusal = RefuseBusy
			}
		}
	}
	if rc.refusal == Storable {
		rc.mode = recStore
	} else {
		rc.tell(nil)
	}
	if rc.w == nil {
		return
	}
	dst := rc.w.Header()
	for k, v := range rc.h {
		dst[k] = v
	}
	c.setStatus(dst, rc.statusValue())
	rc.w.WriteHeader(code)
}

// informational passes a 1xx answer (103 Early Hints) on to the client
// as the backend paths do without a cache: its fields are sent with it
// and cleared after it; the caller clears the recorder's own. Nothing of
// it is stored, and a background refresh or a coalesced waiter gets none.
func (rc *recorder) informational(code int) {
	if rc.status != 0 || rc.w == nil || code == http.StatusSwitchingProtocols { // upgrades bypass the cache
		return
	}
	dst := rc.w.Header()
	for k, v := range rc.h {
		dst[k] = append(dst[k], v...)
	}
	rc.w.WriteHeader(code)
	clear(dst)
}

func (rc *recorder) statusValue() []string {
	fwd := fwdURIMiss
	switch {
	case rc.stale != nil:
		fwd = fwdStale
	case rc.lk.entry != nil:
		fwd = fwdVaryMiss
	}
	return rc.c.missStatus(fwd, rc.status, rc.mode == recStore, rc.refusal)
}

func (rc *recorder) Write(b []byte) (int, error) {
	if rc.status == 0 {
		rc.WriteHeader(http.StatusOK)
	}
	switch rc.mode {
	case recNotModified, recStaleError:
		return len(b), nil
	case recStore:
		if n := int64(len(rc.body) + len(b)); n > rc.limit || !rc.hold(n) {
			rc.mode, rc.body, rc.refusal = recPass, nil, RefuseTooLarge
			if n <= rc.limit {
				rc.refusal = RefuseBusy
			}
			rc.drop()
			rc.tell(nil)
		} else {
			rc.body = append(rc.body, b...)
			if int64(len(rc.body)) == rc.want {
				rc.keep() // whole: stored before its last bytes go out, so the client's next request finds it
			}
		}
	}
	if rc.w == nil {
		return len(b), nil
	}
	n, err := rc.w.Write(b)
	if err != nil && rc.mode == recStore {
		rc.mode, rc.body, rc.cut = recPass, nil, true
		rc.drop()
		rc.tell(nil)
	}
	return n, err
}

func (rc *recorder) Flush() {
	if rc.w != nil && (rc.mode == recPass || rc.mode == recStore) {
		_ = http.NewResponseController(rc.w).Flush()
	}
}

func (rc *recorder) Unwrap() http.ResponseWriter { return rc.w }

// abandon: the answer was cut short; nothing is stored, the waiters go on.
func (rc *recorder) abandon() {
	rc.drop()
	rc.tell(nil)
}

// holdStep is how much more of the recording budget a body of unknown
// length takes at a time.
const holdStep = 64 << 10

// hold makes rc's share of the cache's recording budget cover n body
// bytes. The bodies being recorded (held in memory while they arrive,
// whichever tier they are bound for) hold at most max_memory together;
// false: that is spent, and this answer passes through unstored.
func (rc *recorder) hold(n int64) bool {
	if n <= rc.held {
		return true
	}
	more := n - rc.held
	if rc.want < 0 {
		more = max(more, min(holdStep, rc.limit-rc.held))
	}
	c := rc.c
	if c.recording.Add(more) > c.cfg.MaxMemory {
		c.recording.Add(-more)
		return false
	}
	rc.held += more
	return true
}

// drop gives rc's share of the recording budget back.
func (rc *recorder) drop() {
	if rc.held != 0 {
		rc.c.recording.Add(-rc.held)
		rc.held = 0
	}
}

// finish stores what may be stored, answers the client from the store
// when the answer was held back, and tells the flight.
func (rc *recorder) finish() Result {
	c := rc.c
	if rc.status == 0 {
		if rc.req.Context().Err() != nil {
			rc.tell(nil) // the client left before any answer
			return Miss
		}
		rc.WriteHeader(http.StatusOK)
	}
	switch rc.mode {
	case recNotModified:
		n := c.updated(rc.req, rc.stale, rc.h, rc.reqTime, rc.resp)
		if n == nil {
			rc.tell(nil)
			if rc.w != nil {
				c.serveObject(rc.w, rc.req, rc.stale, rc.resp, []string{"fedigate; fwd=stale; fwd-status=304; detail=validator-mismatch"})
			}
			return Revalidated
		}
		c.store(rc.lk.key, rc.lk.hash, rc.req.URL.Path, n)
		rc.tell(n)
		if rc.w != nil {
			c.serveObject(rc.w, rc.req, n, rc.resp, []string{"fedigate; fwd=stale; fwd-status=304"})
		}
		return Revalidated
	case recStaleError:
		rc.tell(rc.stale)
		if rc.w != nil {
			c.serveObject(rc.w, rc.req, rc.stale, rc.resp, []string{"fedigate; fwd=stale; fwd-status=" + strconv.Itoa(rc.status) + "; detail=stale-if-error"})
		}
		return Stale
	case recStore:
		if rc.want >= 0 && int64(len(rc.body)) != rc.want {
			rc.tell(nil) // fewer bytes than announced
			return Miss
		}
		rc.keep()
		return Miss
	}
	rc.tell(nil)
	return Miss
}

// keep stores the whole answer and tells the flight, once.
func (rc *recorder) keep() {
	if rc.stored {
		return
	}
	rc.stored = true
	if rc.body == nil {
		rc.body = []byte{}
	}
	o := rc.c.newObject(rc.req, rc.status, rc.h, rc.cc, rc.body, rc.reqTime, rc.resp)
	if !rc.c.store(rc.lk.key, rc.lk.hash, rc.req.URL.Path, o) {
		o = nil
	}
	rc.tell(o)
}

package cache

import (
	"net/http"
	"strings"
	"time"
)

// The RFC 9111 decisions, as pure functions over request and stored
// headers: may this answer be stored (§3), how long is it fresh (§4.2.1,
// §4.2.2), how old is it (§4.2.3), may a stored answer be used for this
// request or must it be revalidated (§4, §5.2.1), may it be served stale
// on an error (RFC 5861 §4, bounded by stale_if_error).

// understood are the status codes the cache knows the meaning of
// (must-understand, §5.2.2.3); no other status is stored.
var understood = map[int]bool{
	200: true, 203: true, 204: true, 300: true, 301: true, 302: true, 303: true,
	307: true, 308: true, 404: true, 405: true, 410: true, 414: true, 451: true, 501: true,
}

// heuristic are the statuses cacheable by default (RFC 9110 §15.1).
var heuristic = map[int]bool{200: true, 203: true, 204: true, 300: true, 301: true, 308: true, 404: true, 405: true, 410: true, 414: true, 501: true}

// maxHeuristic caps a heuristic lifetime (§4.2.2: beyond a day the RFC
// asks for a warning; fedigate does not go there).
const maxHeuristic = 24 * time.Hour

// Refusal says why an answer is not stored ("" = storable); it is the
// Cache-Status detail of a miss that was not stored.
type Refusal string

// Reasons an answer is not stored.
const (
	Storable          Refusal = ""
	RefuseMethod      Refusal = "method"
	RefuseReqNoStore  Refusal = "request-no-store"
	RefuseNoStore     Refusal = "no-store"
	RefusePrivate     Refusal = "private"
	RefuseStatus      Refusal = "status"
	RefuseSetCookie   Refusal = "set-cookie"
	RefuseVaryStar    Refusal = "vary-star"
	RefuseAuth        Refusal = "authorization"
	RefuseCookie      Refusal = "cookie-not-in-vary"
	RefuseTrailer     Refusal = "trailer"
	RefuseNoFreshness Refusal = "no-freshness"
	RefuseMalformed   Refusal = "malformed"
	RefuseTooLarge    Refusal = "too-large"
	RefuseIncomplete  Refusal = "incomplete"
	RefuseBusy        Refusal = "busy" // the answers being recorded already hold max_memory
)

// storable decides §3 for a shared cache, plus fedigate's own rules: no
// answer that sets a cookie, and an answer to a request with a cookie only
// when Vary names Cookie. cc is the answer's parsed Cache-Control.
func storable(req *http.Request, reqCC Directives, status int, h http.Header, cc Directives, ccErr error) Refusal {
	switch {
	case req.Method != http.MethodGet:
		return RefuseMethod
	case reqCC.NoStore:
		return RefuseReqNoStore
	case ccErr != nil:
		return RefuseMalformed
	case cc.MustUnderstand && !understood[status]:
		return RefuseStatus // §5.2.2.3
	case cc.NoStore && !(cc.MustUnderstand && understood[status]):
		return RefuseNoStore // must-understand with a known status overrides no-store
	case cc.Private:
		return RefusePrivate
	case !understood[status]:
		return RefuseStatus
	case len(h["Set-Cookie"]) > 0:
		return RefuseSetCookie
	case len(h["Trailer"]) > 0:
		return RefuseTrailer
	}
	vary, star := parseVary(h["Vary"])
	if star {
		return RefuseVaryStar
	}
	if _, ok := req.Header["Authorization"]; ok && !cc.Public && cc.SMaxAge < 0 && !cc.MustRevalidate {
		return RefuseAuth // §3.5
	}
	if _, ok := req.Header["Cookie"]; ok && !hasName(vary, "Cookie") {
		return RefuseCookie
	}
	explicit := cc.MaxAge >= 0 || cc.SMaxAge >= 0 || len(h["Expires"]) > 0
	if !explicit && !cc.Public && !(heuristic[status] && hasValidator(h)) {
		return RefuseNoFreshness
	}
	return Storable
}

func hasValidator(h http.Header) bool {
	return len(h["Etag"]) > 0 || len(h["Last-Modified"]) > 0
}

// freshnessLifetime is §4.2.1 for a shared cache: s-maxage, then max-age,
// then Expires minus Date, then a heuristic (§4.2.2) of a tenth of the
// time since Last-Modified, at most a day, only when the answer is public
// (the product rule: no heuristic lifetime unless the answer permits it).
func freshnessLifetime(status int, h http.Header, cc Directives, date time.Time) time.Duration {
	switch {
	case cc.SMaxAge >= 0:
		return cc.SMaxAge
	case cc.MaxAge >= 0:
		return cc.MaxAge
	}
	if ex := h["Expires"]; len(ex) > 0 {
		if len(ex) > 1 {
			for _, v := range ex[1:] {
				if v != ex[0] {
					return 0 // §4.2.1: disagreeing values: stale
				}
			}
		}
		t, err := http.ParseTime(ex[0])
		if err != nil {
			return 0 // §5.3: an invalid date is in the past
		}
		return max(t.Sub(date), 0)
	}
	if cc.Public && heuristic[status] {
		if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil && lm.Before(date) {
			return min(date.Sub(lm)/10, maxHeuristic)
		}
	}
	return 0
}

// dateOf is the answer's Date, or respTime when it has none or a bad one.
func dateOf(h http.Header, respTime time.Time) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t
	}
	return respTime
}

// ageValue is the Age field (§5.1): the first member, a non-negative
// integer; anything else is ignored (0).
func ageValue(h http.Header) time.Duration {
	v := h.Get("Age")
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	d, ok := parseDelta(strings.TrimSpace(v))
	if !ok {
		return 0
	}
	return d
}

// correctedInitialAge is §4.2.3 up to the answer's arrival.
func correctedInitialAge(date time.Time, age time.Duration, reqTime, respTime time.Time) time.Duration {
	apparent := max(respTime.Sub(date), 0)
	corrected := age + respTime.Sub(reqTime)
	return max(apparent, corrected)
}

// use is what a stored answer may do for a request.
type use int

const (
	useFresh      use = iota // serve it
	useStale                 // stale, but the client allows it (max-stale)
	useSWR                   // stale within stale-while-revalidate: serve, refresh in the background
	useRevalidate            // ask the backend (conditionally when it has validators)
)

func (u use) String() string {
	return [...]string{"fresh", "stale", "stale-while-revalidate", "revalidate"}[u]
}

// decide is §4 and §5.2.1 for one stored answer and one request.
func decide(o *Object, reqCC Directives, reqPragmaNoCache bool, now time.Time) use {
	if o.CC.NoCache || reqCC.NoCache || reqPragmaNoCache {
		return useRevalidate
	}
	age := o.age(now)
	if reqCC.MaxAge >= 0 && age > reqCC.MaxAge {
		return useRevalidate
	}
	if o.Lifetime > age {
		if reqCC.MinFresh >= 0 && o.Lifetime-age < reqCC.MinFresh {
			return useRevalidate
		}
		return useFresh
	}
	if noStale(o.CC) {
		return useRevalidate
	}
	staleness := age - o.Lifetime
	if reqCC.MaxStaleAny || reqCC.MaxStale >= 0 && staleness <= reqCC.MaxStale {
		return useStale
	}
	if o.CC.StaleWhileRevalidate >= 0 && staleness <= o.CC.StaleWhileRevalidate {
		return useSWR
	}
	return useRevalidate
}

// noStale: the answer forbids serving it stale (§4.2.4): must-revalidate,
// and for a shared cache proxy-revalidate and s-maxage (§5.2.2.10).
func noStale(cc Directives) bool {
	return cc.MustRevalidate || cc.ProxyRevalidate || cc.SMaxAge >= 0
}

// staleOnError reports whether o may be served while the backend fails:
// within the answer's stale-if-error and never longer than bound.
func staleOnError(o *Object, now time.Time, bound time.Duration) bool {
	if noStale(o.CC) || o.CC.NoCache {
		return false
	}
	allowed := bound
	if o.CC.StaleIfError >= 0 {
		allowed = min(allowed, o.CC.StaleIfError)
	}
	return o.age(now)-o.Lifetime <= allowed
}

// backendFailed: the statuses stale_if_error covers (the edge answers 502
// when the backend cannot be reached and 504 when it is too slow).
func backendFailed(status int) bool {
	return status == 500 || status == 502 || status == 503 || status == 504
}

// parseVary returns the canonical field names of Vary, and whether it
// holds "*".
func parseVary(lines []string) (names []string, star bool) {
	for _, line := range lines {
		for f := range strings.SplitSeq(line, ",") {
			f = strings.TrimSpace(f)
			switch {
			case f == "":
			case f == "*":
				return nil, true
			case !validFieldName(f):
				return nil, true // unreadable: as good as "*"
			default:
				f = canonicalField(f)
				if !hasName(names, f) {
					names = append(names, f)
				}
			}
		}
	}
	return names, false
}

// hasName reports whether the field names list holds f (canonical).
func hasName(list []string, f string) bool {
	for _, n := range list {
		if n == f {
			return true
		}
	}
	return false
}

func canonicalField(f string) string { return http.CanonicalHeaderKey(f) }

// invalidates reports whether an unsafe request's answer invalidates
// stored answers (§4.4: a non-error status).
func invalidates(method string, status int) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return status >= 200 && status < 400
}

// etagMatch compares two entity tags weakly (RFC 9110 §8.8.3.2).
func etagMatch(a, b string) bool {
	a, b = strings.TrimPrefix(a, "W/"), strings.TrimPrefix(b, "W/")
	return a != "" && a == b
}

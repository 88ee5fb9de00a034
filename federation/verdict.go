package federation

import "net/http"

// Verdict is the guard's decision on one delivery: a small enum whose
// String is the metric label and the log's verdict field.
type Verdict uint8

const (
	Passed    Verdict = iota // went on to the backend
	Unsigned                 // 401: no signature, with require_signature
	Malformed                // 401: a signature header that does not parse, with require_signature
	Ambiguous                // 401: key ids naming different hosts
	Denied                   // 403: deny_domains or the blocklist
	ClockSkew                // 401: Date, created or expires outside max_clock_skew
	Limited                  // 429: over limit per period
	StoreDown                // 503: the limit's store failed and on_store_error = "deny"
	TooLarge                 // 413: over max_body
	BadBody                  // 400 or 408: the body could not be read
	BadDigest                // 400: a Digest or Content-Digest that does not match
	TooDeep                  // 400: JSON nested deeper than the filters read
	Dropped                  // 202: a drop filter matched; never reached the backend
	Rejected                 // 403: a reject filter matched
)

var verdictNames = [...]string{
	Passed: "passed", Unsigned: "unsigned", Malformed: "malformed", Ambiguous: "ambiguous",
	Denied: "denied", ClockSkew: "clock_skew", Limited: "limited", StoreDown: "store_down",
	TooLarge: "too_large", BadBody: "bad_body", BadDigest: "bad_digest", TooDeep: "too_deep",
	Dropped: "dropped", Rejected: "rejected",
}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// status is the answer of a refusal: the public half of the verdict.
func (v Verdict) status() (int, string) {
	switch v {
	case Unsigned:
		return http.StatusUnauthorized, "Request not signed"
	case Malformed, Ambiguous:
		return http.StatusUnauthorized, "Signature header malformed"
	case ClockSkew:
		return http.StatusUnauthorized, "Signature date outside the allowed window"
	case Denied, Rejected:
		return http.StatusForbidden, "Delivery refused"
	case Limited:
		return http.StatusTooManyRequests, "Too many requests"
	case StoreDown:
		return http.StatusServiceUnavailable, "Service temporarily unavailable"
	case TooLarge:
		return http.StatusRequestEntityTooLarge, "Request body too large"
	case BadBody:
		return http.StatusBadRequest, "Request body could not be read"
	case BadDigest:
		return http.StatusBadRequest, "Digest does not match the body"
	case TooDeep:
		return http.StatusBadRequest, "Activity nested too deeply"
	case Dropped:
		return http.StatusAccepted, ""
	}
	return http.StatusOK, ""
}

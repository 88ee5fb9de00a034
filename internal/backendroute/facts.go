package backendroute

import "net/http"

// Facts are what the edge decides once about how the backend will route a
// request, carried in the request's context beside the client address, so
// that the router, the rate limits and the sign-up gate read the same
// answer and nobody reads a body twice.
type Facts struct {
	// Path is Canonical(r.URL.Path).
	Path string

	override Override
	read     bool // override holds the answer
}

// Reset makes f the facts of r, forgetting the previous request's.
func (f *Facts) Reset(r *http.Request) {
	*f = Facts{Path: Canonical(r.URL.Path)}
	if r.Method != http.MethodPost {
		f.read = true // only a POST is overridden
	}
}

// MethodOverride is MethodOverride(r), read at the first call (a small
// form body is read and put back on r) and remembered after it.
func (f *Facts) MethodOverride(r *http.Request) Override {
	if !f.read {
		f.override, f.read = MethodOverride(r), true
	}
	return f.override
}

// contextKey is the key under which a request's context answers with its
// *Facts; the edge's own context type answers it without an allocation
// (IsContextKey).
type contextKey struct{}

// IsContextKey reports whether a context Value key asks for the *Facts.
func IsContextKey(key any) bool {
	_, ok := key.(contextKey)
	return ok
}

// Of returns the facts the edge decided for r. Outside the edge (tests, a
// handler used alone) they are computed now, for this call only.
func Of(r *http.Request) *Facts {
	if f, ok := r.Context().Value(contextKey{}).(*Facts); ok && f != nil {
		return f
	}
	f := new(Facts)
	f.Reset(r)
	return f
}

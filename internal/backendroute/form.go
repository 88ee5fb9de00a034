package backendroute

import "net/http"

// FormBody returns the body of r when the backend reads it as a
// url-encoded form (a POST without a Content-Type, as Rack does, or
// application/x-www-form-urlencoded) and it is at most 64 KiB; it is put
// back on r, so the backend gets the same bytes. nil otherwise.
func FormBody(r *http.Request) []byte {
	ct := r.Header["Content-Type"]
	switch {
	case len(ct) == 0 && r.Method == http.MethodPost:
	case len(ct) == 1 && rackMediaType(ct[0]) == "application/x-www-form-urlencoded":
	default:
		return nil
	}
	body, ok := readForm(r)
	if !ok {
		return nil
	}
	return body
}

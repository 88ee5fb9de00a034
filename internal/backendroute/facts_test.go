package backendroute

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// countingBody counts the reads of a request body.
type countingBody struct {
	r     io.Reader
	reads int
}

func (b *countingBody) Read(p []byte) (int, error) { b.reads++; return b.r.Read(p) }
func (b *countingBody) Close() error               { return nil }

// The method override of a request is read from its body once, however
// many rules ask (the rate limits and the sign-up gate both do), and the
// body the backend gets is the one the client sent.
func TestFactsReadTheOverrideOnce(t *testing.T) {
	body := &countingBody{r: strings.NewReader("_method=put&user%5Bpassword%5D=x")}
	r, _ := http.NewRequest(http.MethodPost, "https://example.test//AUTH/", body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	f := new(Facts)
	f.Reset(r)
	r = r.WithContext(context.WithValue(r.Context(), contextKey{}, f))
	if got := Of(r); got != f || got.Path != "/auth" {
		t.Fatalf("Of = %+v, want the context's facts with path /auth", got)
	}
	for range 3 {
		if o := Of(r).MethodOverride(r); o.Method != http.MethodPut || o.Ambiguous {
			t.Fatalf("override %+v", o)
		}
	}
	reads := body.reads
	if o := Of(r).MethodOverride(r); o.Method != http.MethodPut || body.reads != reads {
		t.Fatalf("a later rule read the body again (%d reads, then %d)", reads, body.reads)
	}
	b, _ := io.ReadAll(r.Body)
	if string(b) != "_method=put&user%5Bpassword%5D=x" {
		t.Fatalf("the backend would get %q", b)
	}
}

// A GET has no override, and nothing is read.
func TestFactsOfAGetReadNothing(t *testing.T) {
	body := &countingBody{r: strings.NewReader("_method=put")}
	r, _ := http.NewRequest(http.MethodGet, "https://example.test/auth", body)
	f := Of(r)
	if o := f.MethodOverride(r); o != (Override{}) || body.reads != 0 {
		t.Fatalf("override %+v after %d reads", o, body.reads)
	}
}

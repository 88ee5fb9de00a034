package backendroute

import (
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"/auth":         "/auth",
		"/auth/":        "/auth",
		"//auth":        "/auth",
		"/AUTH":         "/auth",
		"/x/../auth":    "/auth",
		"/./auth/.":     "/auth",
		"auth":          "/auth",
		"":              "/",
		"/":             "/",
		"/..":           "/",
		"//api//v1///x": "/api/v1/x",
		"/K\u212a":      "/k\u212a", // the Kelvin sign is not a K
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWithoutFormat(t *testing.T) {
	for in, want := range map[string]string{
		"/auth.json":             "/auth",
		"/auth.":                 "/auth",
		"/auth.a.b":              "/auth",
		"/auth":                  "/auth",
		"/api/v1/accounts.json":  "/api/v1/accounts",
		"/v1.2/accounts":         "/v1.2/accounts",
		"/.well-known":           "/.well-known",
		"/.well-known/webfinger": "/.well-known/webfinger",
		"/":                      "/",
	} {
		if got := WithoutFormat(in); got != want {
			t.Errorf("WithoutFormat(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalPathDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = WithoutFormat(Canonical("/api/v1/accounts.json")) }); n != 0 {
		t.Fatalf("%v allocations for a canonical path", n)
	}
}

// FuzzCanonical: nothing panics; Canonical is idempotent and its result
// canonical; WithoutFormat keeps a path canonical and only shortens its
// last segment; the spellings a backend routes alike come out the same.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"/auth", "/auth/", "//auth", "/AUTH", "/x/../auth", "/auth.json", "", "auth", "/./", "/..", "/auth\x00", "/é/auth", "/.well-known/x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := Canonical(p)
		if !IsCanonical(c) || Canonical(c) != c {
			t.Fatalf("Canonical(%q) = %q is not canonical", p, c)
		}
		w := WithoutFormat(c)
		if !IsCanonical(w) || !strings.HasPrefix(c, w) || strings.Contains(c[len(w):], "/") {
			t.Fatalf("WithoutFormat(%q) = %q", c, w)
		}
		if strings.HasPrefix(p, "/") && !strings.Contains(p, "/.") {
			for _, v := range []string{p + "/", "/" + p, upperASCII(p), strings.ReplaceAll(p, "/", "//")} {
				if got := Canonical(v); got != c {
					t.Fatalf("Canonical(%q) = %q but Canonical(%q) = %q", p, c, v, got)
				}
			}
		}
	})
}

func BenchmarkCanonicalWithoutFormat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = WithoutFormat(Canonical("/api/v1/timelines/public"))
	}
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

package cache

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseCacheControl: never panics; values stay in range; one line or
// the same directives over two lines read alike.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=180, public", "private, no-store", `no-cache="Set-Cookie, X-A"`, "max-age=10, max-age=20",
		"max-stale", "s-maxage=99999999999999999999", `private="a`, "must-understand, no-store", "max-age=\"60\"",
		"stale-while-revalidate=30, stale-if-error=86400", ",,, ,", "ext=\"a\\\"b\", public",
	} {
		f.Add(s, "")
		f.Add(s, "max-age=1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		d, err := ParseCacheControl([]string{a, b})
		if err != nil {
			return
		}
		for _, v := range []int64{int64(d.MaxAge), int64(d.SMaxAge), int64(d.MinFresh), int64(d.MaxStale), int64(d.StaleIfError), int64(d.StaleWhileRevalidate)} {
			if v < -1 || v > int64(maxDelta) {
				t.Fatalf("value %d out of range", v)
			}
		}
		if strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
			return
		}
		one, err := ParseCacheControl([]string{a + "," + b})
		if err == nil && !reflect.DeepEqual(one, d) {
			t.Fatalf("%q + %q: one line %+v, two lines %+v", a, b, one, d)
		}
	})
}

// FuzzPrimaryKey: the key names scheme, host, path and query without
// ambiguity: the parts read back from it are the request's.
func FuzzPrimaryKey(f *testing.F) {
	for _, s := range [][2]string{
		{"social.example", "/users/a/statuses/1"}, {"Social.Example:443", "/p?q=1"}, {"a.example", "/a%2Fb;x?b=%20&a=1;c"},
		{"a.example", "/x.css"}, {"[::1]:8443", "/?"}, {"h/x", "/p"}, {"a.example", "http://b.example/p"}, {"a.example", "/p%3Fq"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, host, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{Method: "GET", Host: host, URL: u, Header: http.Header{}}
		key, ok := appendPrimaryKey(nil, r)
		if !ok {
			return
		}
		k := string(key)
		rest, found := strings.CutPrefix(k, "http://")
		if !found {
			t.Fatalf("key %q: no scheme", k)
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			t.Fatalf("key %q: no path", k)
		}
		h, pq := rest[:i], rest[i:]
		wantHost := strings.TrimSuffix(strings.ToLower(host), ":80")
		if h != wantHost {
			t.Fatalf("key %q: host %q, want %q", k, h, wantHost)
		}
		p, q, hasQ := strings.Cut(pq, "?")
		if p != u.EscapedPath() || q != u.RawQuery || hasQ != (u.RawQuery != "" || u.ForceQuery) {
			t.Fatalf("key %q: path %q query %q, want %q %q", k, p, q, u.EscapedPath(), u.RawQuery)
		}
	})
}

// FuzzSecondaryKey: never panics, and two requests whose Vary fields
// differ after normalisation never share a secondary key.
func FuzzSecondaryKey(f *testing.F) {
	for _, s := range []string{"application/activity+json", `application/ld+json; profile="https://www.w3.org/ns/activitystreams"`,
		"text/html,*/*;q=0.8", "application/json, */*", "", "gzip, br", "gzip;q=0"} {
		f.Add(s, s+",x", true)
	}
	vary := []string{"Accept", "Accept-Encoding", "Cookie"}
	f.Fuzz(func(t *testing.T, a, b string, normalize bool) {
		if strings.ContainsAny(a+b, "\n\x00") {
			return // no such field value reaches the cache
		}
		ha := http.Header{"Accept": {a}, "Cookie": {a}}
		hb := http.Header{"Accept": {b}, "Cookie": {b}}
		ka := string(appendSecondaryKey(nil, vary, ha, normalize))
		kb := string(appendSecondaryKey(nil, vary, hb, normalize))
		if strings.Count(ka, "\n") != len(vary) {
			t.Fatalf("key %q: want one line per field", ka)
		}
		if ka == kb && string(appendList(nil, ha["Cookie"])) != string(appendList(nil, hb["Cookie"])) {
			t.Fatalf("cookies %q and %q share a key", a, b)
		}
	})
}

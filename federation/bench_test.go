package federation

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/ratelimit"
)

// rewindBody is a request body the benchmark rewinds between runs.
type rewindBody struct {
	b   []byte
	off int
}

func (r *rewindBody) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}
func (r *rewindBody) Close() error { return nil }

// nullWriter is a ResponseWriter that keeps nothing.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}

// BenchmarkPassingDelivery is the guard's cost for a delivery that
// passes: a Mastodon-like Create of about 1.5 KB, draft-cavage signed
// with a Digest, from a domain not in a 1000-name deny list; the
// handler behind it reads the body as the proxy would.
func BenchmarkPassingDelivery(b *testing.B) {
	body := []byte(activity("real.example", "<p>Hello <span class=\"h-card\"><a href=\"https://victim.example/@v\" class=\"u-url mention\">@<span>v</span></a></span>, this is a perfectly ordinary post of a few sentences, the kind that makes up most of the traffic an inbox receives from the servers it follows; nothing in it should trouble any filter, with a link to <a href=\"https://blog.example/post\">my blog</a> and a hashtag <a href=\"https://real.example/tags/fediverse\" class=\"mention hashtag\" rel=\"tag\">#<span>fediverse</span></a>.</p>",
		`[{"type":"Mention","href":"https://victim.example/users/v","name":"@v@victim.example"},{"type":"Hashtag","href":"https://real.example/tags/fediverse","name":"#fediverse"}]`))
	sum := sha256.Sum256(body)
	deny := make([]string, 1000)
	for i := range deny {
		deny[i] = "spam" + strconv.Itoa(i) + ".example"
	}
	now := time.Now()
	for _, c := range []struct {
		name   string
		change func(*configs.Federation)
	}{
		{"deny+limit", func(f *configs.Federation) { f.CheckDigest = false }},
		{"deny+limit+digest", func(f *configs.Federation) {}},
		{"deny+limit+digest+filter", func(f *configs.Federation) {
			f.Filters = []configs.Filter{{Name: "discord-invites", Match: []string{"discord.gg/"}, MinMentions: 0, Action: "drop"}}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			clock := now
			lim, err := ratelimit.New(configs.RateLimit{Store: configs.StoreMemory, OnStoreError: configs.OnErrAllow, StoreTimeout: time.Second, IPv6Prefix: 64},
				ratelimit.Options{Now: func() time.Time { clock = clock.Add(20 * time.Microsecond); return clock }})
			if err != nil {
				b.Fatal(err)
			}
			defer lim.Close()
			cfg := testConfig(func(f *configs.Federation) {
				f.DenyDomains, f.Limit, f.Period = deny, 100_000, time.Second
				c.change(f)
			})
			g, err := New(cfg, Options{Logger: discard(), Limiter: lim, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_ = r.Body.Close()
			}))
			rb := &rewindBody{b: body}
			u, _ := url.Parse("https://social.example/inbox")
			r := &http.Request{Method: http.MethodPost, URL: u, Host: "social.example", RemoteAddr: "198.51.100.7:40000", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{
					"Signature":    {`keyId="https://real.example/users/a#main-key",algorithm="rsa-sha256",headers="(request-target) host date digest content-type",signature="` + base64.StdEncoding.EncodeToString(make([]byte, 256)) + `"`},
					"Digest":       {"SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])},
					"Date":         {now.UTC().Format(http.TimeFormat)},
					"Content-Type": {"application/activity+json"},
				}}
			w := &nullWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rb.off = 0
				r.Body, r.ContentLength = rb, int64(len(body))
				h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkNotAnInbox is the guard's cost for any other request.
func BenchmarkNotAnInbox(b *testing.B) {
	g, err := New(testConfig(func(f *configs.Federation) { f.Limit = 10 }), Options{Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	h := g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	u, _ := url.Parse("https://social.example/api/v1/timelines/home")
	r := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
	w := &nullWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

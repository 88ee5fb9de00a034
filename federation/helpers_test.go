package federation

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// Signature specs as Fedify names them.
const (
	specCavage  = "draft-cavage-http-signatures-12"
	specRFC9421 = "rfc9421"
)

// signReq is one delivery for Fedify to sign.
type signReq struct {
	URL   string `json:"url"`
	Body  string `json:"body"`
	KeyID string `json:"keyId"`
	Spec  string `json:"spec"`
	Time  int64  `json:"time,omitempty"` // Unix seconds; 0 = now
}

// fedifySign signs deliveries with Fedify (a real ActivityPub
// implementation, run by node) and returns their headers.
func fedifySign(t testing.TB, reqs ...signReq) []http.Header {
	t.Helper()
	dir, err := filepath.Abs("testdata/fedify")
	if err != nil {
		t.Fatal(err)
	}
	node := testenv.Binary(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@fedify", "fedify")); err != nil {
		t.Fatalf("Fedify is not installed: run `npm ci --prefix federation/testdata/fedify` (./scripts/test does)")
	}
	in, _ := json.Marshal(reqs)
	cmd := exec.Command(node, "sign.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fedify sign: %v: %s", err, stderr.String())
	}
	var maps []map[string]string
	if err := json.Unmarshal(out, &maps); err != nil {
		t.Fatalf("fedify sign: %v: %s", err, out)
	}
	hs := make([]http.Header, len(maps))
	for i, m := range maps {
		hs[i] = http.Header{}
		for k, v := range m {
			hs[i].Set(k, v)
		}
	}
	return hs
}

// backend is a loopback server that records what reached it and answers
// 202, as Mastodon's inbox does.
type backend struct {
	*httptest.Server
	mu  sync.Mutex
	got []seen
}

type seen struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

func newBackend(t testing.TB) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, seen{r.Method, r.URL.Path, r.Header.Clone(), body})
		b.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.got...)
}

// edge is the guard in front of a backend, on loopback, as the proxy runs
// it: the guard's middleware, then a reverse proxy.
type edge struct {
	*httptest.Server
	guard *Guard
	be    *backend
	logs  *testenv.LogBuffer
	clock *testenv.Clock
}

// testConfig is the mastodon preset's [federation], with changes.
func testConfig(change func(*configs.Federation)) configs.Federation {
	c, _ := configs.Default(configs.PresetMastodon)
	f := c.Federation
	if change != nil {
		change(&f)
	}
	return f
}

// clientHeader names the test client's address (the ClientAddr hook reads it).
const clientHeader = "X-Test-Client"

func testClientAddr(r *http.Request) netip.Addr {
	if a, err := netip.ParseAddr(r.Header.Get(clientHeader)); err == nil {
		return a
	}
	return remoteAddr(r)
}

func startEdge(t testing.TB, cfg configs.Federation, opts Options) *edge {
	t.Helper()
	e := &edge{be: newBackend(t), logs: &testenv.LogBuffer{}, clock: testenv.NewClock(time.Now())}
	if opts.Logger == nil {
		opts.Logger = e.logs.Logger()
	}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	if opts.ClientAddr == nil {
		opts.ClientAddr = testClientAddr
	}
	g, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	e.guard = g
	u, _ := url.Parse(e.be.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	e.Server = httptest.NewServer(g.Middleware(rp))
	t.Cleanup(e.Server.Close)
	return e
}

// post sends a delivery; header pairs are added to h.
func (e *edge) post(t testing.TB, path string, h http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		if k == "Host" {
			continue
		}
		req.Header[k] = append([]string(nil), vs...)
	}
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// cavageHeader is a draft-cavage Signature header for keyID (the
// signature itself is not checked by the guard).
func cavageHeader(keyID string) http.Header {
	return http.Header{"Signature": {`keyId="` + keyID + `",algorithm="rsa-sha256",headers="(request-target) host date digest",signature="c2ln"`}}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// activity is a Create of a Note with the given content and tags JSON.
func activity(actorHost, content, tags string) string {
	if tags == "" {
		tags = "[]"
	}
	return `{"@context":"https://www.w3.org/ns/activitystreams","id":"https://` + actorHost + `/activities/1","type":"Create","actor":"https://` + actorHost + `/users/a",` +
		`"object":{"id":"https://` + actorHost + `/notes/1","type":"Note","content":` + jsonString(content) + `,"tag":` + tags + `,"to":["https://www.w3.org/ns/activitystreams#Public"]}}`
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

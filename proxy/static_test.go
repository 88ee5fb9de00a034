package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// staticTree writes a Mastodon-like public/ tree and a secret outside it.
func staticTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "public")
	files := map[string]string{
		"sw.js":                     "self.addEventListener('fetch',()=>{})",
		"assets/app.css":            strings.Repeat("body{color:red}\n", 64),
		"assets/app.css.gz":         "GZ-BYTES",
		"assets/app.css.br":         "BR-BYTES",
		"packs/big.js":              "0123456789abcdefghij",
		"system/media/a.png":        "\x89PNG fake",
		"robots.txt":                "User-agent: *",
		"emoji/dir/.keep":           "",
		"../secret.txt":             "TOP SECRET",
		"assets/..hidden..name.txt": "dots inside a name are fine",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(root, "assets", "leak.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "system", "up")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestStaticFilesCacheHeadersPerPrefix(t *testing.T) {
	be, seenc := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Backend.StaticRoot = staticTree(t)
	te := startEdge(t, cfg, Options{})
	c := te.client(false)
	rows := []struct {
		path, status, cache, extra string
	}{
		{"/sw.js", "200", "public, max-age=604800, must-revalidate", ""},
		{"/assets/app.css", "200", "public, max-age=2419200, must-revalidate", ""},
		{"/assets/..hidden..name.txt", "200", "public, max-age=2419200, must-revalidate", ""},
		{"/system/media/a.png", "200", "public, max-age=2419200, immutable", "nosniff"},
		{"/assets/missing.css", "404", "", ""},
		{"/system/missing.png", "404", "", ""},
		{"/emoji/dir/", "404", "", ""},
		{"/emoji/dir", "404", "", ""},
		{"/robots.txt", "200", "", ""},
	}
	for _, row := range rows {
		resp, body := get(t, c, te.base+row.path, nil)
		if fmt.Sprint(resp.StatusCode) != row.status || resp.Header.Get("Cache-Control") != row.cache {
			t.Errorf("%s: %d cache %q body %q", row.path, resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
		if row.extra != "" && resp.Header.Get("X-Content-Type-Options") != row.extra {
			t.Errorf("%s: nosniff missing", row.path)
		}
		if strings.HasPrefix(row.path, "/system/") && row.status == "200" && resp.Header.Get("Content-Security-Policy") != "default-src 'none'; form-action 'none'" {
			t.Errorf("%s: CSP %q", row.path, resp.Header.Get("Content-Security-Policy"))
		}
	}
	select {
	case s := <-seenc:
		t.Fatalf("static request reached the backend: %s", s.Path)
	default:
	}
	// try_files: no such file, so the backend answers.
	if resp, body := get(t, c, te.base+"/@alice", nil); resp.StatusCode != 200 || body != `{"ok":true}` {
		t.Fatalf("try_files fallback: %d %q", resp.StatusCode, body)
	}
	if s := <-seenc; s.Path != "/@alice" {
		t.Fatalf("backend saw %q", s.Path)
	}
	// POST to a static-only prefix never reaches the backend.
	resp, err := c.Post(te.base+"/system/media/a.png", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST static: %d", resp.StatusCode)
	}
}

func TestStaticRangeRequests(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Backend.StaticRoot = staticTree(t)
	te := startEdge(t, cfg, Options{})
	resp, body := get(t, te.client(false), te.base+"/packs/big.js", map[string]string{"Range": "bytes=5-9", "Accept-Encoding": "gzip"})
	if resp.StatusCode != http.StatusPartialContent || body != "56789" || resp.Header.Get("Content-Range") != "bytes 5-9/20" || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("%d %q range %q enc %q", resp.StatusCode, body, resp.Header.Get("Content-Range"), resp.Header.Get("Content-Encoding"))
	}
}

func TestStaticPrecompressedSiblings(t *testing.T) {
	be, _ := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Backend.StaticRoot = staticTree(t)
	te := startEdge(t, cfg, Options{})
	c := te.client(false)
	rows := []struct{ ae, enc, body string }{
		{"gzip, br", "br", "BR-BYTES"},
		{"gzip", "gzip", "GZ-BYTES"},
		{"br;q=0, gzip", "gzip", "GZ-BYTES"},
		{"", "", strings.Repeat("body{color:red}\n", 64)},
	}
	for _, row := range rows {
		resp, body := get(t, c, te.base+"/assets/app.css", map[string]string{"Accept-Encoding": row.ae})
		if resp.Header.Get("Content-Encoding") != row.enc || body != row.body {
			t.Errorf("AE %q: encoding %q body %q", row.ae, resp.Header.Get("Content-Encoding"), body)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("AE %q: type %q vary %q", row.ae, resp.Header.Get("Content-Type"), resp.Header.Get("Vary"))
		}
	}
}

func TestAttackPathTraversalStatic(t *testing.T) {
	be, seenc := recordingBackend(t)
	cfg := testConfig(t, be.URL, "")
	cfg.Backend.StaticRoot = staticTree(t)
	te := startEdge(t, cfg, Options{})
	for _, target := range []string{
		"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt",
		"/assets/..%2f..%2fsecret.txt", "/assets/..%5c..%5csecret.txt", "/assets/leak.txt", "/system/up/secret.txt",
		"/system/media/a.png%00.txt",
	} {
		conn := te.rawTLS(t)
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", target)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if strings.Contains(string(b[:n]), "TOP SECRET") || resp.StatusCode == 200 && !strings.Contains(string(b[:n]), `"ok"`) {
			t.Errorf("%s: %d %q", target, resp.StatusCode, b[:n])
		}
	}
	for len(seenc) > 0 {
		if s := <-seenc; strings.Contains(s.Path, "..") {
			t.Errorf("backend saw a traversal path %q", s.Path)
		}
	}
}

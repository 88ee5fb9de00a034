package proxy

import (
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// staticFiles serves files under backend.static_root through os.Root, so
// no path, encoded "..", or symlink can leave the root.
type staticFiles struct {
	root *os.Root
}

func openStatic(dir string) (*staticFiles, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("proxy: backend.static_root %q: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("proxy: backend.static_root %q: %w", dir, err)
	}
	return &staticFiles{root: root}, nil
}

func (s *staticFiles) close() { _ = s.root.Close() }

// rootName turns a URL path into a name relative to the root, or "" when
// it cannot name a file there (directories, NUL, "..", backslashes).
func rootName(urlPath string) string {
	if urlPath == "" || urlPath[0] != '/' || strings.ContainsAny(urlPath, "\x00\\") || hasDotDotSegment(urlPath) {
		return ""
	}
	name := path.Clean(urlPath)[1:]
	if name == "" || strings.HasSuffix(urlPath, "/") {
		return ""
	}
	return name
}

// openRegular opens name under the root if it is a regular file.
func (s *staticFiles) openRegular(name string) (*os.File, fs.FileInfo, bool) {
	f, err := s.root.Open(name)
	if err != nil {
		return nil, nil, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, false
	}
	return f, fi, true
}

// serve answers r with the file its path names, with the route's headers,
// a precompressed sibling when the client accepts one, and ranges. It
// reports false, having written nothing, when there is no such file.
func (s *staticFiles) serve(w http.ResponseWriter, r *http.Request, headers map[string]string, gz *gzipper) bool {
	name := rootName(r.URL.Path)
	if name == "" {
		return false
	}
	f, fi, ok := s.openRegular(name)
	if !ok {
		return false
	}
	h := w.Header()
	for k, v := range headers {
		h.Set(k, v)
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Add("Vary", "Accept-Encoding")
	ae := r.Header.Get("Accept-Encoding")
	for _, enc := range [...]struct{ token, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
		if !acceptsEncoding(ae, enc.token) {
			continue
		}
		cf, cfi, ok := s.openRegular(name + enc.ext)
		if !ok {
			continue
		}
		_ = f.Close()
		f, fi = cf, cfi
		h.Set("Content-Encoding", enc.token)
		if ctype == "" {
			h.Set("Content-Type", "application/octet-stream")
		}
		break
	}
	defer f.Close()
	if h.Get("Content-Encoding") == "" && gz != nil && gz.wants(r) {
		gw := gz.wrap(w)
		defer gw.finish()
		w = gw
	}
	http.ServeContent(w, r, name, fi.ModTime(), f)
	return true
}

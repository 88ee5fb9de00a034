package proxy

import (
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// gzipMinLength is the smallest known body worth compressing.
const gzipMinLength = 256

// gzipper compresses responses of the preset's gzip types (level 6, pooled
// writers) when the client accepts gzip and the backend did not compress.
type gzipper struct {
	types []string // lower-case media types
	pool  sync.Pool
}

func newGzipper(types []string) *gzipper {
	if len(types) == 0 {
		return nil
	}
	g := &gzipper{}
	for _, t := range types {
		g.types = append(g.types, strings.ToLower(strings.TrimSpace(t)))
	}
	g.pool.New = func() any {
		w, _ := gzip.NewWriterLevel(nil, 6)
		return w
	}
	return g
}

// wants reports whether r may get a gzip answer: the client accepts it,
// asked for no range, and the method has a body in its answer.
func (g *gzipper) wants(r *http.Request) bool {
	if g == nil || r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		return false
	}
	ae := r.Header["Accept-Encoding"]
	return len(ae) > 0 && acceptsEncoding(strings.Join(ae, ","), "gzip")
}

func (g *gzipper) compressible(ctype string) bool {
	if i := strings.IndexByte(ctype, ';'); i >= 0 {
		ctype = ctype[:i]
	}
	ctype = strings.TrimSpace(ctype)
	for _, t := range g.types {
		if strings.EqualFold(ctype, t) {
			return true
		}
	}
	return false
}

func (g *gzipper) wrap(w http.ResponseWriter) *gzipWriter {
	return &gzipWriter{ResponseWriter: w, g: g}
}

// gzipWriter decides at WriteHeader whether to compress.
type gzipWriter struct {
	http.ResponseWriter
	g       *gzipper
	zw      *gzip.Writer
	decided bool
}

func (w *gzipWriter) decide(code int) {
	w.decided = true
	h := w.ResponseWriter.Header()
	if code < 200 || code == http.StatusNoContent || code == http.StatusPartialContent || code == http.StatusNotModified {
		return
	}
	if h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" || !w.g.compressible(h.Get("Content-Type")) {
		return
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < gzipMinLength {
			return
		}
	}
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et)
	}
	w.zw = w.g.pool.Get().(*gzip.Writer)
	w.zw.Reset(w.ResponseWriter)
}

func (w *gzipWriter) WriteHeader(code int) {
	if !w.decided && code >= 200 {
		w.decide(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *gzipWriter) Write(b []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.zw != nil {
		return w.zw.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *gzipWriter) Flush() {
	if w.zw != nil {
		_ = w.zw.Flush()
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *gzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish closes the gzip stream and returns the writer to the pool.
func (w *gzipWriter) finish() {
	if w.zw != nil {
		_ = w.zw.Close()
		w.zw.Reset(nil)
		w.g.pool.Put(w.zw)
		w.zw = nil
	}
}

// acceptsEncoding reports whether an Accept-Encoding value admits token
// (not with q=0).
func acceptsEncoding(ae, token string) bool {
	for ae != "" {
		part := ae
		if i := strings.IndexByte(ae, ','); i >= 0 {
			part, ae = ae[:i], ae[i+1:]
		} else {
			ae = ""
		}
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), token) {
			continue
		}
		params = strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		if strings.HasPrefix(params, "q=0") && strings.Trim(strings.TrimPrefix(params, "q="), "0.") == "" {
			return false
		}
		return true
	}
	return false
}

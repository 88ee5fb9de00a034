package proxy

import (
	"net/http"
	"strings"

	"github.com/fedigate/fedigate/configs"
)

// Route names, used in the access log and the Observe hook.
const (
	RouteWeb       = "web"
	RouteStreaming = "streaming"
	RouteStatic    = "static"
)

// router holds a preset's routes in the form the request path needs.
type router struct {
	streaming []string
	exact     map[string]*configs.StaticRoute
	prefixes  []*configs.StaticRoute // longest first
	tryFiles  bool
}

func newRouter(rt configs.Routes) router {
	r := router{streaming: append([]string(nil), rt.Streaming...), tryFiles: rt.TryFiles, exact: map[string]*configs.StaticRoute{}}
	for i := range rt.Static {
		s := rt.Static[i]
		if s.Exact {
			r.exact[s.Prefix] = &s
			continue
		}
		r.prefixes = append(r.prefixes, &s)
	}
	for i := 1; i < len(r.prefixes); i++ { // insertion sort, longest prefix first
		for j := i; j > 0 && len(r.prefixes[j].Prefix) > len(r.prefixes[j-1].Prefix); j-- {
			r.prefixes[j], r.prefixes[j-1] = r.prefixes[j-1], r.prefixes[j]
		}
	}
	return r
}

// isStreaming reports whether path belongs to the streaming backend.
func (rt *router) isStreaming(path string) bool {
	for _, p := range rt.streaming {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// staticRoute returns the static route of path, if any.
func (rt *router) staticRoute(path string) *configs.StaticRoute {
	if s, ok := rt.exact[path]; ok {
		return s
	}
	for _, s := range rt.prefixes {
		if strings.HasPrefix(path, s.Prefix) {
			return s
		}
	}
	return nil
}

// route sends the request to the streaming backend, a static file or the
// web backend.
func (c *chain) route(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	path := st.facts.Path // the route the backend would take, however spelled
	if c.routes.isStreaming(path) {
		st.route = RouteStreaming
		if st.counted { // streams do not hold up a drain; they are closed after it
			st.counted = false
			c.edge.active.Add(-1)
		}
		c.backends.serveStream(w, r)
		return
	}
	if c.static != nil {
		getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
		if sr := c.routes.staticRoute(path); sr != nil {
			if getOrHead && c.static.serve(w, r, sr.Headers, c.gzip) {
				st.route = RouteStatic
				return
			}
			if sr.OnlyStatic {
				st.route = RouteStatic
				if !getOrHead {
					w.Header().Set("Allow", "GET, HEAD")
					c.edgeError(w, r, http.StatusMethodNotAllowed, "method not allowed")
					return
				}
				c.edgeError(w, r, http.StatusNotFound, "not found")
				return
			}
		} else if c.routes.tryFiles && getOrHead && c.static.serve(w, r, nil, c.gzip) {
			st.route = RouteStatic
			return
		}
	}
	st.route = RouteWeb
	c.backends.serveWeb(w, r)
}

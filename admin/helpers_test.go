package admin

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedigate/fedigate/configs"
)

func configAdmin() configs.Admin { return configs.Admin{Listen: "127.0.0.1:0"} }

// newCounterVec registers a counter in m's registry as another package
// (the cache) would.
func newCounterVec(m *Metrics, name, label string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, []string{label})
	m.Registry.MustRegister(c)
	return c
}

func ioCopy(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

package admin

import (
	"io"
	"net/http"

	"github.com/fedigate/fedigate/configs"
)

func configAdmin() configs.Admin { return configs.Admin{Listen: "127.0.0.1:0"} }

func ioCopy(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

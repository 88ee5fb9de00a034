package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/internal/testenv"
)

// validate builds what run builds, minus listening: a fault only the
// edge's constructor sees (500.html in static_root that cannot be read)
// is reported; a listen address another process holds is not (validate
// binds nothing); and neither writes the state directory.
func TestValidateRunsRunsConstructorsMinusListening(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s *reloadSetup)
		code  int
		want  string
	}{
		{"edge fault: 500.html is a directory", func(t *testing.T, s *reloadSetup) {
			s.staticRoot = t.TempDir()
			if err := os.Mkdir(filepath.Join(s.staticRoot, "500.html"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, 1, "500.html"},
		{"listen address in use: not bound, so ok", func(t *testing.T, s *reloadSetup) { s.listen = busyAddr(t) }, 0, ": ok (preset mastodon)"},
		{"redis store: a client is made, Redis is not needed", func(t *testing.T, s *reloadSetup) {
			s.extra = "[ratelimit]\nstore = \"redis\"\nredis_url = \"redis://" + testenv.Loopback(t) + "/0\"\n"
		}, 0, ": ok (preset mastodon)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCertPair(t, dir, "cert")
			s := reloadSetup{dir: dir, listen: testenv.Loopback(t), admin: testenv.Loopback(t), backend: "http://127.0.0.1:1", pow: 16, apiLimit: 300}
			tc.setup(t, &s)
			writeConfig(t, dir, s.text())
			code, out, errOut := run(t, dir, "validate", "-config", filepath.Join(dir, "fedigate.toml"))
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, tc.code, tc.want, out, errOut)
			}
			if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
				t.Fatalf("validate made the state dir: %v", err)
			}
		})
	}
}

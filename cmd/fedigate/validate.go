package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/fedigate/fedigate/configs"
)

// cmdValidate loads a config and builds the gateway `run` builds, minus
// listening and minus anything that would write state: exit 0, or exit 1
// with one FILE:LINE: fault per line.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	path := fs.String("config", defaultConfigPath, "config file to check")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		printFaults(stdout, err)
		return 1
	}
	if err := constructAll(cfg); err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (preset %s)\n", *path, cfg.Preset)
	return 0
}

// constructAll runs buildGateway, the constructors `run` runs, on cfg and
// closes what it built; nothing is bound. validate writes nothing: the
// state directory (the self-signed CA and leaf, signup.key) is a
// throw-away one, and acme mode is checked as self-signed (validate asks
// no CA for a certificate). files mode reads the real pair.
func constructAll(cfg *configs.Config) error {
	scratch, err := os.MkdirTemp("", "fedigate-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	c := *cfg
	c.TLS.StateDir = scratch
	if c.TLS.Mode != configs.TLSFiles {
		c.TLS.Mode = configs.TLSSelfSigned
		c.TLS.ACMEEmail, c.TLS.ACMECA, c.TLS.ACMECARoot = "", "", ""
	}
	g, err := buildGateway(&c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		return err
	}
	return g.shutdown(context.Background())
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/fedigate/fedigate/certs"
	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/egress"
	"github.com/fedigate/fedigate/federation"
	"github.com/fedigate/fedigate/proxy"
	"github.com/fedigate/fedigate/ratelimit"
	"github.com/fedigate/fedigate/signupgate"
)

// cmdValidate loads a config and runs the constructors `run` runs, minus
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
		for _, line := range strings.Split(err.Error(), "\n") { // a joined error: one fault a line
			fmt.Fprintf(stdout, "%s: %s\n", *path, line)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (preset %s)\n", *path, cfg.Preset)
	return 0
}

// constructAll builds each part the way run does and closes it again. The
// self-signed and ACME certificate stores and the pass key are not created
// here (validate writes nothing): those constructors run against a
// throw-away state directory.
func constructAll(cfg *configs.Config) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	scratch, err := os.MkdirTemp("", "fedigate-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	tlsCfg := cfg.TLS
	if tlsCfg.Mode != configs.TLSFiles {
		tlsCfg.Mode, tlsCfg.StateDir = configs.TLSSelfSigned, scratch
		tlsCfg.ACMEEmail, tlsCfg.ACMECA, tlsCfg.ACMECARoot = "", "", ""
	}
	src, err := certs.New(tlsCfg, cfg.Server.Hosts, certs.Options{Logger: quiet})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	defer src.Close()
	if cfg.Egress.Listen != "" {
		if _, err := egress.New(cfg.Egress, egress.Options{Logger: quiet, OwnAddrs: ownAddrs(cfg)}); err != nil {
			return fmt.Errorf("egress: %w", err)
		}
	}
	if cfg.RateLimit.Store == configs.StoreRedis {
		rc, err := ratelimit.OpenRedis(cfg.RateLimit.RedisURL)
		if err != nil {
			return fmt.Errorf("ratelimit.redis_url: %w", err)
		}
		_ = rc.Close()
	}
	lim, err := ratelimit.New(cfg.RateLimit, ratelimit.Options{Logger: quiet, Redis: nil})
	if err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	defer lim.Close()
	fed, err := federation.New(cfg.Federation, federation.Options{Logger: quiet, Limiter: lim})
	if err != nil {
		return err // "federation: FILE:LINE: ..." for each bad blocklist row
	}
	defer fed.Close()
	guard, err := signupgate.New(cfg.Signup, cfg.Routes, signupgate.Options{Logger: quiet, StateDir: scratch})
	if err != nil {
		return fmt.Errorf("signup: %w", err)
	}
	defer guard.Close()
	if _, err := proxy.New(cfg, proxy.Options{Logger: quiet, TLSConfig: src.TLSConfig()}); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	return nil
}

package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/fedigate/fedigate/certs"
)

// cmdCert creates the self-signed CA and leaf if missing and prints the CA
// file, the leaf's fingerprint and the cloudflared lines that verify it (in
// acme mode: each host's certificate, issuer and expiry).
func cmdCert(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("cert", stderr)
	path := fs.String("config", defaultConfigPath, "config file; when the default is absent, the built-in default")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	cfg, err := loadConfig(*path, isFlagSet(fs, "config"))
	if err != nil {
		printFaults(stderr, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := certs.New(cfg.TLS, cfg.Server.Hosts, certs.Options{Logger: log, TLSALPNPort: portOf(cfg.Server.Listen), HTTPChallengePort: portOf(cfg.Server.RedirectListen)})
	if err != nil {
		fmt.Fprintln(stderr, "fedigate cert:", err)
		return 1
	}
	defer src.Close()
	if err := src.Describe(stdout); err != nil {
		fmt.Fprintln(stderr, "fedigate cert:", err)
		return 1
	}
	return 0
}

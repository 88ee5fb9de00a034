package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/configs"
)

const defaultConfigPath = "./fedigate.toml"

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	path := fs.String("config", defaultConfigPath, "config file; when the default is absent, the built-in default runs")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until exit (scripts/pgo)")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintln(stderr, "-cpuprofile:", err)
			}
		}()
	}
	explicit := isFlagSet(fs, "config")
	cfg, err := loadConfig(*path, explicit)
	if err != nil {
		printFaults(stderr, err)
		return 1
	}
	out := &lockedWriter{w: stderr}
	log := newLogger(cfg.Log, out)
	redis.SetLogger(redisLog{log})
	access, err := newAccessLog(cfg.Log, out, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer closeAccessLog(access, log)
	if cfg.Source == configs.BuiltinSource {
		log.Info("no config file: running the built-in default", "looked_for", *path,
			"preset", cfg.Preset, "listen", cfg.Server.Listen, "backend", cfg.Backend.Web,
			"hint", "fedigate init -preset mastodon > fedigate.toml")
	} else {
		log.Info("config loaded", "file", cfg.Source, "preset", cfg.Preset)
	}
	g, err := buildGateway(cfg, log, access)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := g.start(); err != nil {
		log.Error("cannot start", "err", err)
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = g.shutdown(shutdownCtx)
		return 1
	}
	log.Info("serving", "listen", cfg.Server.Listen, "egress", cfg.Egress.Listen, "admin", cfg.Admin.Listen)
	return serveUntilSignal(g, *path, explicit, log)
}

// serveUntilSignal reloads on SIGHUP and drains on SIGTERM/SIGINT.
func serveUntilSignal(g *gateway, path string, explicit bool, log *slog.Logger) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case err := <-g.egressDone:
			log.Error("egress stopped", "err", err)
			continue
		}
		if sig == syscall.SIGHUP {
			reloadFrom(g, path, explicit, log)
			continue
		}
		log.Info("shutting down: draining requests in flight", "signal", sig.String(), "timeout", g.cfg.Server.ShutdownTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Server.ShutdownTimeout)
		err := g.shutdown(ctx)
		cancel()
		if err != nil {
			log.Warn("shutdown cut short", "err", err)
		}
		closeAccessLog(g.access, log)
		log.Info("stopped")
		return 0
	}
}

// reloadFrom loads the config again and applies it; a bad config is
// refused, each fault logged, and the running one kept.
func reloadFrom(g *gateway, path string, explicit bool, log *slog.Logger) {
	flushAccessLog(g.access, log)
	cfg, err := loadConfig(path, explicit)
	if err != nil {
		for _, f := range configs.Faults(err) {
			log.Error("reload refused: config fault", "fault", f.Error())
		}
		if len(configs.Faults(err)) == 0 {
			log.Error("reload refused", "err", err)
		}
		return
	}
	if err := g.reload(cfg); err != nil {
		log.Error("reload refused: running config kept", "err", err)
		return
	}
	log.Info("config reloaded", "file", cfg.Source)
}

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

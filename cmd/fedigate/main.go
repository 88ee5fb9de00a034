// Command fedigate runs the gateway and its helper commands: run, validate,
// init, cert, doctor, version. It only parses flags and wires the packages
// together (gateway.go); every feature lives in its own package:
// configs (schema, presets, validation), certs (TLS), proxy (the edge),
// ratelimit, signupgate, egress and admin (health and metrics).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/fedigate/fedigate/configs"
)

// Set by the release build (-ldflags "-X main.version=...").
var version = "dev"

const usage = `fedigate: one binary in front of a Mastodon, Pleroma or Akkoma server.

Usage:
  fedigate [run] [-config FILE]    run the gateway (FILE defaults to ./fedigate.toml;
                                   without it, the built-in default runs;
                                   -cpuprofile FILE records a CPU profile until
                                   exit, for scripts/pgo)
  fedigate validate -config FILE   check a config; exit 1 with FILE:LINE: faults
  fedigate init -preset NAME       print a complete, commented config (mastodon,
                                   pleroma, akkoma, custom)
  fedigate cert [-config FILE]     create the self-signed CA and leaf if missing and
                                   print what cloudflared needs to verify them
  fedigate doctor [-config FILE]   check every configured part, one line each
  fedigate version                 version, commit, Go version

Signals: SIGHUP reloads the config; SIGTERM and SIGINT drain and exit.
`

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain dispatches a command line and returns the exit code.
func runMain(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "init":
		return cmdInit(args, stdout, stderr)
	case "cert":
		return cmdCert(args, stdout, stderr)
	case "doctor":
		return cmdDoctor(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fedigate: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// newFlags makes a flag set that reports its errors on stderr and returns.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fedigate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args; it refuses stray arguments.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	return true
}

// loadConfig reads path; when path is the default and absent, the built-in
// default is used (and the caller logs that).
func loadConfig(path string, explicit bool) (*configs.Config, error) {
	if !explicit {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return configs.BuiltinDefault(), nil
		}
	}
	return configs.Load(path)
}

// printFaults writes each config fault on its own line.
func printFaults(w io.Writer, err error) {
	faults := configs.Faults(err)
	if len(faults) == 0 {
		fmt.Fprintln(w, err)
		return
	}
	for _, f := range faults {
		fmt.Fprintln(w, f)
	}
}

func cmdInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", stderr)
	preset := fs.String("preset", configs.PresetMastodon, "preset: mastodon, pleroma, akkoma or custom")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	b, err := configs.Example(*preset)
	if err != nil {
		fmt.Fprintln(stderr, "fedigate init:", err)
		return 2
	}
	_, _ = stdout.Write(b)
	return 0
}

func versionLine() string {
	commit, dirty := "unknown", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
	}
	return fmt.Sprintf("fedigate %s (commit %s%s, %s %s/%s)", version, commit, dirty, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

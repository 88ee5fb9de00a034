package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fedigate/fedigate/cache"
	"github.com/fedigate/fedigate/certs"
	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/egress"
	"github.com/fedigate/fedigate/ratelimit"
)

// check is one line of doctor's report.
type check struct {
	name string
	ok   bool
	msg  string // what was found; when not ok, what is wrong and how to mend it
}

// cmdDoctor probes every configured part and prints one line per check.
func cmdDoctor(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("doctor", stderr)
	path := fs.String("config", defaultConfigPath, "config file; when the default is absent, the built-in default")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	failed := false
	report := func(c check) {
		state := "ok  "
		if !c.ok {
			state, failed = "FAIL", true
		}
		fmt.Fprintf(stdout, "%s %-18s %s\n", state, c.name, c.msg)
	}
	cfg, err := loadConfig(*path, isFlagSet(fs, "config"))
	if err != nil {
		for _, f := range configs.Faults(err) {
			report(check{"config", false, f.Error()})
		}
		if len(configs.Faults(err)) == 0 {
			report(check{"config", false, err.Error()})
		}
		return 1
	}
	report(check{"config", true, cfg.Source + " (preset " + cfg.Preset + ")"})
	for _, c := range doctorChecks(cfg) {
		report(c)
	}
	if failed {
		return 1
	}
	return 0
}

func doctorChecks(cfg *configs.Config) []check {
	var out []check
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	out = append(out, checkPorts(cfg)...)
	out = append(out, checkCertificates(cfg, quiet))
	out = append(out, checkHTTP("backend web", cfg.Backend.Web+"/health", cfg.Backend.Web,
		"start the backend's web process or fix backend.web"))
	if cfg.Backend.Streaming != "" {
		out = append(out, checkHTTP("backend streaming", cfg.Backend.Streaming+"/api/v1/streaming/health", cfg.Backend.Streaming,
			"start the streaming process (mastodon-streaming) or fix backend.streaming"))
	}
	if cfg.RateLimit.Store == configs.StoreRedis {
		out = append(out, checkRedis(cfg))
	}
	if cfg.Egress.Listen != "" {
		out = append(out, checkEgress(cfg, quiet)...)
	}
	if cfg.Backend.EnvFile != "" {
		out = append(out, checkEnvFile(cfg))
	}
	if cfg.Cache.Enabled && cfg.Cache.Dir != "" {
		msg, err := cache.CheckDisk(cfg.Cache.Dir, cfg.Cache.MaxDisk)
		if err != nil {
			msg = err.Error() + " (fix cache.dir or set it to \"\" for no disk tier)"
		}
		out = append(out, check{"cache disk tier", err == nil, msg})
	}
	return out
}

// checkPorts: each listen address is free, or held by a running fedigate.
func checkPorts(cfg *configs.Config) []check {
	var out []check
	for _, l := range []struct{ key, addr string }{
		{"server.listen", cfg.Server.Listen}, {"server.redirect_listen", cfg.Server.RedirectListen},
		{"egress.listen", cfg.Egress.Listen}, {"admin.listen", cfg.Admin.Listen},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err == nil {
			ln.Close()
			out = append(out, check{"port " + l.key, true, l.addr + " is free"})
			continue
		}
		if cfg.Admin.Listen != "" && fedigateAnswers(cfg.Admin.Listen) {
			out = append(out, check{"port " + l.key, true, l.addr + " is in use by the running fedigate"})
			continue
		}
		msg := fmt.Sprintf("%s cannot be opened: %v", l.addr, errors.Unwrap(err))
		if strings.Contains(err.Error(), "permission denied") {
			msg += " (ports below 1024 need root or CAP_NET_BIND_SERVICE; see configs/fedigate.service)"
		} else {
			msg += " (another program holds it: `ss -ltnp` names it; stop it or change " + l.key + ")"
		}
		out = append(out, check{"port " + l.key, false, msg})
	}
	return out
}

func fedigateAnswers(adminAddr string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + adminAddr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Server"), "fedigate")
}

func checkCertificates(cfg *configs.Config, log *slog.Logger) check {
	src, err := certs.New(cfg.TLS, cfg.Server.Hosts, certs.Options{Logger: log, TLSALPNPort: portOf(cfg.Server.Listen), HTTPChallengePort: portOf(cfg.Server.RedirectListen)})
	if err != nil {
		return check{"certificate", false, err.Error()}
	}
	defer src.Close()
	infos := src.Certificates()
	if len(infos) == 0 {
		return check{"certificate", false, "no certificate yet (acme: issuance still running or failing: see the log)"}
	}
	var bad, good []string
	for _, in := range infos {
		left := time.Until(in.NotAfter)
		desc := fmt.Sprintf("%s until %s", strings.Join(in.Names, ","), in.NotAfter.UTC().Format(time.DateOnly))
		if left < 7*24*time.Hour {
			bad = append(bad, desc+" (expires within 7 days: renewal is failing, see the log)")
		} else {
			good = append(good, desc)
		}
	}
	if len(bad) > 0 {
		return check{"certificate", false, strings.Join(bad, "; ")}
	}
	return check{"certificate", true, strings.Join(good, "; ")}
}

// checkHTTP: the backend answers at all (any status: it is up).
func checkHTTP(name, url, base, mend string) check {
	c := http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		return check{name, false, fmt.Sprintf("%s does not answer: %v; %s", base, rootCause(err), mend)}
	}
	resp.Body.Close()
	return check{name, true, fmt.Sprintf("%s answers (%s)", base, resp.Status)}
}

func checkRedis(cfg *configs.Config) check {
	rc, err := ratelimit.OpenRedis(cfg.RateLimit.RedisURL)
	if err != nil {
		return check{"redis", false, err.Error()}
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	info, err := rc.Info(ctx, "server").Result()
	if err != nil {
		return check{"redis", false, fmt.Sprintf("does not answer: %v (is redis-server running? systemctl status redis-server)", rootCause(err))}
	}
	version := "unknown version"
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = "version " + v
		}
	}
	return check{"redis", true, "answers, " + version}
}

// checkEgress: the SOCKS upstream answers, and a fetch of probe_url really
// leaves through it (Cloudflare's trace says warp=on).
func checkEgress(cfg *configs.Config, log *slog.Logger) []check {
	p, err := egress.New(cfg.Egress, egress.Options{Logger: log, OwnAddrs: ownAddrs(cfg)})
	if err != nil {
		return []check{{"egress", false, err.Error()}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Egress.ConnectTimeout)
	defer cancel()
	if err := p.Ready(ctx); err != nil {
		return []check{{"socks upstream", false, fmt.Sprintf("%v (WARP: warp-cli mode proxy; warp-cli proxy port 40000; warp-cli connect)", err)}}
	}
	out := []check{{"socks upstream", true, "answers"}}
	if cfg.Egress.ProbeURL == "" {
		return out
	}
	resp, err := p.HTTPClient(cfg.Egress.ConnectTimeout * 2).Get(cfg.Egress.ProbeURL)
	if err != nil {
		return append(out, check{"egress probe", false, fmt.Sprintf("fetching %s through the upstream failed: %v", cfg.Egress.ProbeURL, rootCause(err))})
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var seen []string
	for _, line := range strings.Split(string(body), "\n") {
		for _, k := range []string{"ip=", "warp=", "colo="} {
			if strings.HasPrefix(line, k) {
				seen = append(seen, strings.TrimSpace(line))
			}
		}
	}
	msg := fmt.Sprintf("%s answered %s through the upstream", cfg.Egress.ProbeURL, resp.Status)
	if len(seen) > 0 {
		msg += ": " + strings.Join(seen, " ")
	}
	if strings.Contains(string(body), "warp=off") {
		return append(out, check{"egress probe", false, msg + " (WARP is off: the fetch left from the upstream's own address, not through WARP)"})
	}
	return append(out, check{"egress probe", true, msg})
}

// checkEnvFile: Mastodon's .env.production sends outbound fetches to the egress.
func checkEnvFile(cfg *configs.Config) check {
	f, err := os.Open(cfg.Backend.EnvFile)
	if err != nil {
		return check{"backend env_file", false, err.Error()}
	}
	defer f.Close()
	want := "http://" + cfg.Egress.Listen
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || (k != "http_proxy" && k != "HTTP_PROXY") {
			continue
		}
		v = strings.TrimRight(strings.Trim(v, `"'`), "/")
		if cfg.Egress.Listen != "" && v == want {
			return check{"backend env_file", true, "http_proxy=" + v + " sends the backend's fetches through the egress"}
		}
		return check{"backend env_file", false, fmt.Sprintf("http_proxy=%s does not point at the egress: set http_proxy=%s and restart Mastodon", v, want)}
	}
	return check{"backend env_file", false, fmt.Sprintf("no http_proxy line: add http_proxy=%s to %s and restart Mastodon", want, cfg.Backend.EnvFile)}
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

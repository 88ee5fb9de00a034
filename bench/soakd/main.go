// Command soakd is the soak test behind bench/soak: it starts fedigate with
// a real Redis, a real SOCKS5 server (microsocks), a web and a streaming
// backend and an egress destination, all on loopback; sends mixed traffic
// (API and ActivityPub GETs, inbox POSTs, static files, websockets, sign-up
// attempts, egress fetches) for DURATION while it restarts Redis, the SOCKS
// server and the web backend and reloads fedigate in turn; then writes
// OUTDIR/report.md and OUTDIR/soak.png. Every loop is bounded in count and
// time; nothing leaves 127.0.0.1.
//
//	soakd DURATION OUTDIR       (bench/soak builds fedigate and runs this)
//	soakd backend web|streaming ADDR
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(log.Ltime)
	if len(os.Args) == 4 && os.Args[1] == "backend" {
		runBackend(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: soakd DURATION OUTDIR   (e.g. soakd 30m ./soak-out); needs FEDIGATE=path to the binary")
		os.Exit(2)
	}
	d, err := time.ParseDuration(os.Args[1])
	if err != nil || d < time.Minute || d > 2*time.Hour {
		fmt.Fprintln(os.Stderr, "soakd: DURATION must be a Go duration from 1m to 2h")
		os.Exit(2)
	}
	if err := soak(d, os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "soakd:", err)
		os.Exit(1)
	}
}

// fault is one injected failure: what was done and when (since traffic start).
type fault struct {
	name       string // redis, socks, web, reload
	start, end time.Duration
}

const outage = 10 * time.Second // how long a killed part stays down

func soak(d time.Duration, out string) error {
	bin := os.Getenv("FEDIGATE")
	if bin == "" {
		return fmt.Errorf("FEDIGATE must name the fedigate binary")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "fedigate-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ports := map[string]string{}
	for _, n := range []string{"gateway", "admin", "egress", "redis", "socks", "web", "streaming", "target"} {
		if ports[n], err = freePort(); err != nil {
			return err
		}
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis-server is missing (./scripts/test installs it)")
	}
	socksBin, err := exec.LookPath("microsocks")
	if err != nil {
		return fmt.Errorf("microsocks is missing (./scripts/test installs it)")
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(name string, args ...string) (*proc, error) {
		p, err := startProc(filepath.Join(work, name+".log"), ports[name], args[0], args[1:]...)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	redisArgs := []string{redisBin, "--bind", "127.0.0.1", "--port", port(ports["redis"]), "--save", "", "--appendonly", "no", "--dir", work}
	socksArgs := []string{socksBin, "-i", "127.0.0.1", "-p", port(ports["socks"])}
	webArgs := []string{self, "backend", "web", ports["web"]}
	redis, err := start("redis", redisArgs...)
	if err != nil {
		return err
	}
	socks, err := start("socks", socksArgs...)
	if err != nil {
		return err
	}
	web, err := start("web", webArgs...)
	if err != nil {
		return err
	}
	if _, err := start("streaming", self, "backend", "streaming", ports["streaming"]); err != nil {
		return err
	}
	stopTarget, err := serveTarget(ports["target"])
	if err != nil {
		return err
	}
	defer stopTarget()
	if err := writeGatewayFiles(work, ports); err != nil {
		return err
	}
	gw, err := startProc(filepath.Join(out, "fedigate.log"), ports["gateway"], bin, "run", "-config", filepath.Join(work, "fedigate.toml"))
	if err != nil {
		return err
	}
	procs = append(procs, gw)
	admin := "http://" + ports["admin"]
	if err := waitListening(ports["admin"], 15*time.Second); err != nil {
		return err
	}

	log.Printf("soak: %s of traffic; fedigate on %s, admin %s", d, ports["gateway"], admin)
	idleBefore := sampleNow(admin)
	tr := newTraffic(ports["gateway"], ports["egress"], ports["target"])
	samples := &sampler{admin: admin}
	tr.start = time.Now()
	every := min(max(d/8, 30*time.Second), 4*time.Minute)
	var faults []fault
	faultsDone := make(chan struct{})
	go func() { // faults in turn: Redis, SOCKS, web backend, reload
		defer close(faultsDone)
		steps := []struct {
			name string
			p    **proc
			args []string
		}{{"redis", &redis, redisArgs}, {"socks", &socks, socksArgs}, {"web", &web, webArgs}, {"reload", nil, nil}}
		for i := 0; ; i++ {
			at := every/2 + time.Duration(i)*every
			if at+outage+20*time.Second > d {
				return
			}
			time.Sleep(time.Until(tr.start.Add(at)))
			s := steps[i%len(steps)]
			f := fault{name: s.name, start: time.Since(tr.start)}
			log.Printf("fault: %s", s.name)
			if s.p == nil {
				_ = gw.cmd.Process.Signal(syscall.SIGHUP)
			} else {
				(*s.p).stop()
				time.Sleep(outage)
				np, err := start(s.name, s.args...)
				if err != nil {
					log.Printf("fault: restarting %s failed: %v", s.name, err)
					return
				}
				*s.p = np
			}
			f.end = time.Since(tr.start)
			faults = append(faults, f)
		}
	}()
	go samples.run(tr.start, d+5*time.Second)
	rate, workers := 120, 16
	tr.run(d, rate, workers, int(d.Seconds())*rate)
	<-faultsDone
	// Idle until the goroutines are back at the baseline, or 2 minutes
	// (pooled keep-alive connections to the backends close after 90 s).
	log.Printf("traffic done (%d requests); idle until goroutines return to %.0f (at most 2 min)", len(tr.results), idleBefore.goroutines)
	idleStart := time.Now()
	var idleAfter point
	for {
		time.Sleep(5 * time.Second)
		idleAfter = sampleNow(admin)
		if idleAfter.ok && idleAfter.goroutines <= idleBefore.goroutines+2 || time.Since(idleStart) > 2*time.Minute {
			break
		}
	}
	_ = gw.cmd.Process.Signal(syscall.SIGTERM)
	gw.wait(20 * time.Second)
	logText, _ := os.ReadFile(filepath.Join(out, "fedigate.log"))
	rep := &report{d: d, results: tr.results, faults: faults, samples: samples.get(), idleBefore: idleBefore, idleAfter: idleAfter, idleWait: time.Since(idleStart),
		log: string(logText), rate: rate, workers: workers, every: every}
	if err := os.WriteFile(filepath.Join(out, "report.md"), []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	if err := rep.plot(filepath.Join(out, "soak.png")); err != nil {
		return err
	}
	log.Printf("wrote %s and %s", filepath.Join(out, "report.md"), filepath.Join(out, "soak.png"))
	return nil
}

func writeGatewayFiles(work string, ports map[string]string) error {
	static := filepath.Join(work, "public")
	if err := os.MkdirAll(filepath.Join(static, "packs"), 0o755); err != nil {
		return err
	}
	js := strings.Repeat("console.log('fedigate soak');\n", 700) // ~20 KB
	if err := os.WriteFile(filepath.Join(static, "packs", "app.js"), []byte(js), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(static, "500.html"), []byte("<!DOCTYPE html><title>down</title>"), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`preset = "mastodon"
[server]
listen = %q
http3 = false
hosts = ["social.test"]
shutdown_timeout = "10s"
[tls]
state_dir = %q
[backend]
web = "http://%s"
streaming = "http://%s"
static_root = %q
[ratelimit]
store = "redis"
redis_url = "redis://%s"
[egress]
listen = %q
upstream = "socks5://%s"
allow = [%q]
[admin]
listen = %q
[log]
level = "warn"
`, ports["gateway"], filepath.Join(work, "state"), ports["web"], ports["streaming"], static, ports["redis"],
		ports["egress"], ports["socks"], ports["target"], ports["admin"])
	return os.WriteFile(filepath.Join(work, "fedigate.toml"), []byte(cfg), 0o600)
}

// serveTarget is the egress's destination: a small feed on loopback.
func serveTarget(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write(actor)
	})}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

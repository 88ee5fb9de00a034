// Command stampede measures federation fan-out side by side: nginx with
// the cache lines of Mastodon's dist/nginx.conf, fedigate with its cache,
// and fedigate without, each over HTTPS on loopback in front of one
// backend that serves 5 requests at a time at 50 ms each (like Puma) and
// answers a public status as Mastodon does (max-age=180, public; Vary:
// Accept, Accept-Language, Cookie). Access logs are on for all.
//
// For each contestant it prints, for a cold burst of 400 concurrent
// fetches of one status (each its own connection and HTTP signature), how
// many reached the backend and the total time; and for repeated fetches
// of a stored status the req/s (wrk, keep-alive). Rounds are interleaved;
// medians are printed with the ratios to nginx.
//
// Usage: go run ./bench/stampede [-rounds 3] [-seconds 10]
// Needs nginx, wrk and openssl (./scripts/test installs them).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const burst = 400

// logLevel is fedigate's log level: "info" logs every request (as nginx's
// access_log here); -quiet-logs sets "warn", to see what the log costs.
var logLevel = "info"

func main() {
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	secs := flag.Int("seconds", 10, "seconds of repeated fetches per contestant and round")
	conns := flag.Int("conns", 64, "wrk connections for repeated fetches")
	quiet := flag.Bool("quiet-logs", false, "fedigate without access log (to see its cost; nginx keeps its log)")
	flag.Parse()
	if *quiet {
		logLevel = "warn"
	}
	if err := run(*rounds, *secs, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "stampede:", err)
		os.Exit(1)
	}
}

type contestant struct {
	name string
	port int
}

func run(rounds, secs, conns int) error {
	os.Setenv("PATH", os.Getenv("PATH")+":/usr/sbin")
	for _, bin := range []string{"nginx", "wrk", "openssl", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is missing (./scripts/test installs it)", bin)
		}
	}
	work, err := os.MkdirTemp("", "fedigate-stampede.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(work, "fedigate"), "./cmd/fedigate").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
		"-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
		"-keyout", filepath.Join(work, "key.pem"), "-out", filepath.Join(work, "cert.pem")).CombinedOutput(); err != nil {
		return fmt.Errorf("openssl: %v\n%s", err, out)
	}
	be, err := startBackend()
	if err != nil {
		return err
	}
	cs := []contestant{{"nginx", freePort()}, {"fedigate", freePort()}, {"fedigate-nocache", freePort()}}
	for _, c := range cs {
		p, err := start(work, c, be.addr)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		if err := waitListening(c.port); err != nil {
			return fmt.Errorf("%s: %v (logs in %s)", c.name, err, work)
		}
	}
	type result struct{ fetches, ms, rps []float64 }
	res := map[string]*result{}
	for r := 0; r < rounds; r++ {
		for _, c := range cs {
			if res[c.name] == nil {
				res[c.name] = &result{}
			}
			path := fmt.Sprintf("/users/alice/statuses/%d%03d", r, c.port%1000)
			be.idle()
			before := be.fetches.Load()
			d, err := coldBurst(c.port, path)
			if err != nil {
				return fmt.Errorf("%s: %v", c.name, err)
			}
			res[c.name].fetches = append(res[c.name].fetches, float64(be.fetches.Load()-before))
			res[c.name].ms = append(res[c.name].ms, float64(d.Milliseconds()))
			rps, err := repeated(c.port, path, secs, conns)
			if err != nil {
				return fmt.Errorf("%s: %v", c.name, err)
			}
			res[c.name].rps = append(res[c.name].rps, rps)
		}
	}
	fmt.Printf("backend: 5 at a time, 50 ms each; cold burst of %d concurrent fetches; repeated: wrk -c%d %ds; median of %d rounds\n\n", burst, conns, secs, rounds)
	fmt.Printf("| %-16s | cold: backend fetches | cold: total time | repeated req/s | time vs nginx | req/s vs nginx |\n", "")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	n := res["nginx"]
	for _, c := range cs {
		x := res[c.name]
		fmt.Printf("| %-16s | %21.0f | %13.0f ms | %14.0f | %12.2fx | %13.2fx |\n", c.name, median(x.fetches), median(x.ms), median(x.rps),
			median(x.ms)/median(n.ms), median(x.rps)/median(n.rps))
	}
	return nil
}

// backend is Puma-like: 5 requests at a time, 50 ms each.
type backend struct {
	addr     string
	fetches  atomic.Int64
	inFlight atomic.Int64
}

// idle waits until the backend has served what the last contestant left
// queued (wrk's connections end with requests still in its queue).
func (b *backend) idle() {
	for quiet := 0; quiet < 10; time.Sleep(20 * time.Millisecond) {
		if b.inFlight.Load() == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

func startBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{addr: ln.Addr().String()}
	slots := make(chan struct{}, 5)
	body := `{"@context":"https://www.w3.org/ns/activitystreams","type":"Note","content":"` + strings.Repeat("x", 1500) + `"}`
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.inFlight.Add(1)
			defer b.inFlight.Add(-1)
			slots <- struct{}{}
			defer func() { <-slots }()
			b.fetches.Add(1)
			time.Sleep(50 * time.Millisecond)
			h := w.Header()
			h.Set("Cache-Control", "max-age=180, public")
			h.Set("Vary", "Accept, Accept-Language, Cookie")
			h.Set("Content-Type", "application/activity+json; charset=utf-8")
			h.Set("Etag", `W/"`+strconv.Itoa(len(r.URL.Path))+`"`)
			_, _ = io.WriteString(w, body)
		}))
	}()
	return b, nil
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func start(work string, c contestant, backend string) (*exec.Cmd, error) {
	logf, err := os.Create(filepath.Join(work, c.name+".log"))
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch c.name {
	case "nginx":
		dir := filepath.Join(work, "nginx")
		_ = os.MkdirAll(filepath.Join(dir, "cache"), 0o700)
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConf(work, dir, c.port, backend)), 0o600); err != nil {
			return nil, err
		}
		cmd = exec.Command("nginx", "-p", dir, "-c", conf, "-g", "daemon off;")
	default:
		conf := filepath.Join(work, c.name+".toml")
		if err := os.WriteFile(conf, []byte(fedigateConf(work, c, backend)), 0o600); err != nil {
			return nil, err
		}
		cmd = exec.Command(filepath.Join(work, "fedigate"), "run", "-config", conf)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	return cmd, cmd.Start()
}

// nginxConf is a Mastodon site: the cache lines of dist/nginx.conf
// (proxy_cache_path, proxy_cache, proxy_cache_valid, proxy_cache_use_stale,
// X-Cached), access log on.
func nginxConf(work, dir string, port int, backend string) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers write the cache under a 0700 temporary dir
	}
	return fmt.Sprintf(`%[5]s
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream backend { server %[4]s fail_timeout=0; keepalive 128; }
  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=CACHE:10m inactive=7d max_size=1g;
  server {
    listen 127.0.0.1:%[3]d ssl http2;
    ssl_certificate %[2]s/cert.pem; ssl_certificate_key %[2]s/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 100000;
    location / {
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Proxy "";
      proxy_pass_header Server;
      proxy_pass http://backend;
      proxy_buffering on;
      proxy_redirect off;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache CACHE;
      proxy_cache_valid 200 7d;
      proxy_cache_valid 410 24h;
      proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
      add_header X-Cached $upstream_cache_status;
      tcp_nodelay on;
    }
  }
}
`, dir, work, port, backend, user)
}

func fedigateConf(work string, c contestant, backend string) string {
	return fmt.Sprintf(`preset = "mastodon"
[server]
listen = "127.0.0.1:%d"
http3 = false
[tls]
mode = "files"
state_dir = %q
cert_file = %q
key_file = %q
[backend]
web = "http://%s"
streaming = ""
[egress]
listen = ""
[admin]
listen = ""
[cache]
enabled = %t
[log]
level = "%s"
`, c.port, filepath.Join(work, c.name+"-state"), filepath.Join(work, "cert.pem"), filepath.Join(work, "key.pem"), backend, c.name == "fedigate", logLevel)
}

func waitListening(port int) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %d", port)
}

// coldBurst: burst concurrent fetches of path, each a fetching instance
// of its own (its own connection, its own signature).
func coldBurst(port int, path string) (time.Duration, error) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	gate := make(chan struct{})
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			req, _ := http.NewRequest("GET", "https://127.0.0.1:"+strconv.Itoa(port)+path, nil)
			req.Host = "social.example"
			req.Header.Set("Accept", "application/activity+json")
			req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
			req.Header.Set("Signature", `keyId="https://i`+strconv.Itoa(i)+`.example/actor#main-key",algorithm="rsa-sha256",headers="(request-target) host date",signature="c2ln`+strconv.Itoa(i)+`"`)
			<-gate
			resp, err := c.Do(req)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, resp.Status)
			}
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	d := time.Since(start)
	if n := failed.Load(); n > 0 {
		return d, fmt.Errorf("%d of %d cold fetches failed (first: %v)", n, burst, firstErr.Load())
	}
	return d, nil
}

var rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// repeated: wrk fetches the stored status over keep-alive connections.
func repeated(port int, path string, secs, conns int) (float64, error) {
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"-H", "Host: social.example", "-H", "Accept: application/activity+json",
		"https://127.0.0.1:"+strconv.Itoa(port)+path).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		return 0, fmt.Errorf("wrk saw errors:\n%s", out)
	}
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("wrk output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// Command inbound simulates an inbox spam wave against fedigate and
// prints what reached the backend. It builds fedigate, runs it on
// loopback in front of a backend of its own (which answers 202 as
// Mastodon's inbox does and counts deliveries per sending domain), and
// sends, from many loopback source addresses at once:
//
//   - domains spam domains x per deliveries each, in four kinds: a
//     quarter suspended in a Mastodon domain-block export, a half
//     carrying the February 2024 payload (mentions, an image, a Discord
//     invite), a quarter plain floods that only the per-domain limit
//     stops;
//   - one real domain's deliveries, interleaved, from its own address.
//
// Signatures are draft-cavage headers naming each domain's key; fedigate
// does not verify them (the backend would), so their bytes are not real
// signatures. Usage: go run ./bench/inbound [-domains 200] [-per 50].
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	domains := flag.Int("domains", 200, "spam domains")
	per := flag.Int("per", 50, "deliveries per spam domain")
	real := flag.Int("real", 20, "deliveries of the real domain")
	limit := flag.Int("limit", 20, "federation.limit per 5 minutes")
	workers := flag.Int("workers", 16, "concurrent senders")
	flag.Parse()
	dir, err := os.MkdirTemp("", "fedigate-inbound-")
	check(err)
	defer os.RemoveAll(dir)

	// the backend
	var mu sync.Mutex
	reached := map[string]int{}
	be, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go http.Serve(be, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		reached[domainOf(r.Header.Get("Signature"))]++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))

	// the blocklist: the first quarter of the spam domains
	var csv strings.Builder
	csv.WriteString("#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n")
	for i := 0; i < *domains/4; i++ {
		fmt.Fprintf(&csv, "%s,suspend,true,true,spam wave,false\n", spamDomain(i))
	}
	check(os.WriteFile(filepath.Join(dir, "blocks.csv"), []byte(csv.String()), 0o600))
	edge, admin := freePort(), freePort()
	cfg := fmt.Sprintf(`preset = "mastodon"
[server]
listen = "127.0.0.1:%d"
http3 = false
[tls]
state_dir = %q
[backend]
web = "http://%s"
streaming = ""
[signup]
gate = "off"
[egress]
listen = ""
[admin]
listen = "127.0.0.1:%d"
[log]
level = "warn"
[federation]
blocklist = %q
limit = %d
period = "5m"
[[federation.filter]]
name = "discord-invites"
match = ["discord.gg/"]
action = "drop"
`, edge, filepath.Join(dir, "state"), be.Addr(), admin, filepath.Join(dir, "blocks.csv"), *limit)
	check(os.WriteFile(filepath.Join(dir, "fedigate.toml"), []byte(cfg), 0o600))
	bin := filepath.Join(dir, "fedigate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fedigate")
	build.Stderr = os.Stderr
	check(build.Run())
	gw := exec.Command(bin, "run", "-config", filepath.Join(dir, "fedigate.toml"))
	gw.Stderr = os.Stderr
	check(gw.Start())
	defer func() { _ = gw.Process.Kill(); _, _ = gw.Process.Wait() }()
	waitListen(fmt.Sprintf("127.0.0.1:%d", edge))

	type job struct {
		domain string
		src    int // last octet of the loopback source address
		spam   bool
	}
	var jobs []job
	for d := 0; d < *domains; d++ {
		for k := 0; k < *per; k++ {
			jobs = append(jobs, job{spamDomain(d), 2 + d%250, d >= *domains/4 && d < *domains*3/4})
		}
	}
	// the real domain's deliveries spread through the wave
	step := max(len(jobs)/max(*real, 1), 1)
	for k := *real - 1; k >= 0; k-- {
		at := min(k*step, len(jobs))
		jobs = append(jobs[:at], append([]job{{"real.example", 254, false}}, jobs[at:]...)...)
	}
	var realOK, realSent, sent atomic.Int64
	statuses := map[int]int{}
	var smu sync.Mutex
	ch := make(chan job)
	var wg sync.WaitGroup
	clients := map[int]*http.Client{}
	for src := 2; src <= 254; src++ {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}
		clients[src] = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // loopback, self-signed
			DialContext:     (&net.Dialer{LocalAddr: local}).DialContext, MaxIdleConnsPerHost: 4,
		}}
	}
	start := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				body := note(j.domain, j.spam)
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("https://127.0.0.1:%d/inbox", edge), strings.NewReader(body))
				req.Header.Set("Content-Type", "application/activity+json")
				req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
				req.Header.Set("Signature", `keyId="https://`+j.domain+`/users/a#main-key",algorithm="rsa-sha256",headers="(request-target) host date",signature="bm90IGEgcmVhbCBzaWduYXR1cmU="`)
				resp, err := clients[j.src].Do(req)
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				sent.Add(1)
				if j.domain == "real.example" {
					realSent.Add(1)
					if code == http.StatusAccepted {
						realOK.Add(1)
					}
				}
				smu.Lock()
				statuses[code]++
				smu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	elapsed := time.Since(start)

	mu.Lock()
	spamReached := 0
	for d, n := range reached {
		if d != "real.example" {
			spamReached += n
		}
	}
	realReached := reached["real.example"]
	mu.Unlock()
	fmt.Printf("sent %d deliveries (%d spam domains x %d, %d real) in %v: %.0f/s through TLS on loopback\n",
		sent.Load(), *domains, *per, realSent.Load(), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds())
	fmt.Printf("answers: %s\n", formatCounts(statuses))
	fmt.Printf("reached the backend: %d of %d spam deliveries (%.1f%%), %d of %d real ones\n",
		spamReached, *domains**per, 100*float64(spamReached)/float64(*domains**per), realReached, realSent.Load())
	fmt.Printf("real domain's pass rate: %.1f%%\n", 100*float64(realOK.Load())/float64(max(realSent.Load(), 1)))
	fmt.Printf("fedigate's verdicts (admin /metrics):\n%s", verdicts(admin))
}

func spamDomain(i int) string { return "spam" + strconv.Itoa(i) + ".example" }

// note is a Create: the February 2024 payload when spam, else an
// ordinary post.
func note(domain string, spam bool) string {
	content, tags := "<p>an ordinary post</p>", `[]`
	if spam {
		content = `<p>@a @b @c join https://discord.gg/xyz</p>`
		tags = `[{"type":"Mention","href":"https://victim.example/users/a"},{"type":"Mention","href":"https://victim.example/users/b"}]`
	}
	return `{"@context":"https://www.w3.org/ns/activitystreams","type":"Create","actor":"https://` + domain + `/users/a","object":{"type":"Note","content":"` +
		strings.ReplaceAll(content, `"`, `\"`) + `","attachment":[{"type":"Document","url":"https://` + domain + `/m.png"}],"tag":` + tags + `}}`
}

func domainOf(sig string) string {
	_, rest, _ := strings.Cut(sig, `keyId="https://`)
	d, _, _ := strings.Cut(rest, "/")
	return d
}

func verdicts(admin int) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	if err != nil {
		return "  (metrics unavailable: " + err.Error() + ")\n"
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "fedigate_federation_") {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}

func formatCounts(m map[int]int) string {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "error"
		}
		parts = append(parts, fmt.Sprintf("%s x%d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListen(addr string) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	log.Fatalf("fedigate did not listen on %s", addr)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// A kind of request the soak sends, and the statuses that count as its
// normal answer (sign-ups without a pass are refused: that is the gate
// working).
type kind struct {
	name   string
	weight int
	ok     []int
	do     func(t *traffic) (int, error)
}

// long: held open on purpose (a websocket), so not in the latency figures.
func (k kind) long() bool { return k.name == "websocket" }

// result is one request's outcome.
type result struct {
	at      time.Duration // since the traffic started
	kind    uint8
	status  int // 0: no HTTP answer
	errText string
	latency time.Duration
}

// traffic sends the mixed load; every loop is bounded by count and time.
type traffic struct {
	gateway string // 127.0.0.1:port of server.listen
	egress  string // 127.0.0.1:port of egress.listen
	target  string // the egress's allowed loopback destination
	client  *http.Client
	viaEgr  *http.Client
	start   time.Time

	mu      sync.Mutex
	results []result
}

var kinds = []kind{
	{"api_get", 30, []int{200}, func(t *traffic) (int, error) {
		return t.get("/api/v1/timelines/public", "application/json")
	}},
	{"activitypub_get", 15, []int{200}, func(t *traffic) (int, error) {
		return t.get("/users/alice", "application/activity+json")
	}},
	{"inbox_post", 15, []int{202}, func(t *traffic) (int, error) {
		return t.post("/users/alice/inbox", "application/activity+json", `{"type":"Create","actor":"https://remote.test/users/bob"}`)
	}},
	{"static_get", 15, []int{200}, func(t *traffic) (int, error) {
		return t.get("/packs/app.js", "*/*")
	}},
	{"websocket", 3, []int{101}, func(t *traffic) (int, error) { return t.websocket() }},
	{"signup_page", 2, []int{200, 303}, func(t *traffic) (int, error) { return t.get("/auth/sign_up", "text/html") }},
	{"signup_post", 5, []int{403, 429}, func(t *traffic) (int, error) {
		return t.post("/auth", "application/x-www-form-urlencoded", "user%5Bemail%5D=a%40b.test&user%5Bpassword%5D=x")
	}},
	{"egress_fetch", 15, []int{200}, func(t *traffic) (int, error) { return t.fetchViaEgress() }},
}

func newTraffic(gateway, egress, target string) *traffic {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, gateway)
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "social.test"},
		ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second}
	proxyURL := &url.URL{Scheme: "http", Host: egress}
	etr := &http.Transport{Proxy: http.ProxyURL(proxyURL), MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	return &traffic{gateway: gateway, egress: egress, target: target,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		viaEgr: &http.Client{Transport: etr, Timeout: 10 * time.Second}}
}

// clientAddr is a made-up client address for X-Forwarded-For (the soak's
// peer, 127.0.0.1, is a trusted proxy): 4096 clients, so the rate limits
// count as they would for a crowd. Only a header value: nothing is sent there.
func clientAddr() string {
	n := rand.IntN(4096)
	return fmt.Sprintf("198.51.%d.%d", 100+n/256, n%256)
}

func (t *traffic) do(req *http.Request) (int, error) {
	req.Host = "social.test"
	req.Header.Set("X-Forwarded-For", clientAddr())
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

func (t *traffic) get(path, accept string) (int, error) {
	req, _ := http.NewRequest("GET", "https://social.test"+path, nil)
	req.Header.Set("Accept", accept)
	return t.do(req)
}

func (t *traffic) post(path, ctype, body string) (int, error) {
	req, _ := http.NewRequest("POST", "https://social.test"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	return t.do(req)
}

func (t *traffic) websocket() (int, error) {
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, ServerName: "social.test", NextProtos: []string{"http/1.1"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", t.gateway)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wsSession(c, "social.test", "/api/v1/streaming?stream=public", clientAddr()); err != nil {
		var se *statusError
		if errors.As(err, &se) {
			return se.code, nil
		}
		return 0, err
	}
	return 101, nil
}

func (t *traffic) fetchViaEgress() (int, error) {
	resp, err := t.viaEgr.Get("http://" + t.target + "/feed")
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// run sends about rate requests a second from workers until d has passed
// or max requests were sent; t.start is set.
func (t *traffic) run(d time.Duration, rate, workers, max int) {
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	tokens := make(chan struct{})
	go func() {
		defer close(tokens)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		end := time.After(d)
		for sent := 0; sent < max; sent++ {
			select {
			case <-end:
				return
			case <-tick.C:
			}
			select {
			case tokens <- struct{}{}:
			case <-end:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range tokens {
				n, i := rand.IntN(total), 0
				for n >= kinds[i].weight {
					n -= kinds[i].weight
					i++
				}
				begin := time.Now()
				status, err := kinds[i].do(t)
				r := result{at: begin.Sub(t.start), kind: uint8(i), status: status, latency: time.Since(begin)}
				if err != nil {
					r.errText = shortErr(err)
				}
				t.mu.Lock()
				t.results = append(t.results, r)
				t.mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.client.CloseIdleConnections()
	t.viaEgr.CloseIdleConnections()
}

// shortErr names a transport error's class, not its addresses.
func shortErr(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed early"
	}
	return "transport error"
}

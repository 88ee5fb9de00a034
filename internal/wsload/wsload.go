// Package wsload is the websocket peer of fedigate's streaming tests and
// of bench/ws-idle: a streaming backend on loopback that echoes, and
// clients that open many websockets and leave them idle, plus the RSS of a
// process. It is for tests and benchmarks only; the proxying is in package
// proxy (websocket.go).
//
// Both peers use github.com/coder/websocket, a maintained implementation
// that reports close codes (CloseStatus) and takes subprotocols, which the
// tests of close codes and of tokens in Sec-WebSocket-Protocol need.
package wsload

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Backend is a streaming backend: every upgrade is accepted (with the
// subprotocol the client offered first, as Mastodon's streaming server
// takes a token there) and echoes each message. A message "die" makes it
// drop the connection without a close frame, as a crashing backend does.
type Backend struct {
	mu     sync.Mutex
	seen   []*http.Request // the upgrade requests, for the header checks
	closed chan error      // one entry each time a websocket's read ends
}

// NewBackend returns a Backend; serve it with an http.Server.
func NewBackend() *Backend { return &Backend{closed: make(chan error, 4096)} }

// Closed receives the read error of every websocket that ended, so a test
// can see the edge closed the backend's side.
func (b *Backend) Closed() <-chan error { return b.closed }

// Seen returns the upgrade requests received so far.
func (b *Backend) Seen() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.seen...)
}

func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.seen = append(b.seen, r.Clone(context.Background()))
	b.mu.Unlock()
	var protos []string
	if p := r.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		protos = []string{strings.TrimSpace(strings.Split(p, ",")[0])}
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protos, InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			b.closed <- err
			return
		}
		if string(msg) == "die" {
			_ = c.CloseNow()
			b.closed <- errors.New("died on request")
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			b.closed <- err
			return
		}
	}
}

// Client dials websockets to a gateway at Addr for host names that need
// not resolve (the TLS name is ServerName).
type Client struct {
	Addr       string // host:port of the gateway
	ServerName string
	TLS        *tls.Config // nil = InsecureSkipVerify (a test CA)
}

func (c *Client) httpClient() *http.Client {
	cfg := c.TLS
	if cfg == nil {
		cfg = &tls.Config{InsecureSkipVerify: true, ServerName: c.ServerName} //nolint:gosec // loopback test peer
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, c.Addr)
		},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1: websockets
	}}
}

// Dial opens one websocket to url (wss://ServerName/path?query) with the
// extra header and subprotocols; the response is returned also on error
// (a 429, a 502).
func (c *Client) Dial(ctx context.Context, url string, hdr http.Header, protos ...string) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c.httpClient(), HTTPHeader: hdr, Subprotocols: protos})
}

// Echo sends msg and waits for it back.
func Echo(ctx context.Context, ws *websocket.Conn, msg string) error {
	if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return err
	}
	_, got, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// OpenIdle opens n websockets to url, 32 at a time, each echoing one
// message, and leaves them open.
func (c *Client) OpenIdle(ctx context.Context, url string, n int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ws, _, err := c.Dial(ctx, url, nil)
			if err == nil {
				err = Echo(ctx, ws, "hello "+strconv.Itoa(i))
			}
			if err != nil {
				errs <- err
				return
			}
			conns[i] = ws
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		CloseAll(conns)
		return nil, err
	}
	return conns, nil
}

// CloseAll closes the websockets without waiting for the peer.
func CloseAll(conns []*websocket.Conn) {
	for _, ws := range conns {
		if ws != nil {
			_ = ws.CloseNow()
		}
	}
}

// RSS is the resident set of process pid, in bytes (Linux /proc).
func RSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("wsload: no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// SettledRSS is RSS after the process has been quiet a moment: the
// lowest of a few readings over settle.
func SettledRSS(pid int, settle time.Duration) (int64, error) {
	best := int64(-1)
	end := time.Now().Add(settle)
	for {
		v, err := RSS(pid)
		if err != nil {
			return 0, err
		}
		if best < 0 || v < best {
			best = v
		}
		if time.Now().After(end) {
			return best, nil
		}
		time.Sleep(settle / 5)
	}
}

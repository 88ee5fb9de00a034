package certs

import (
	"context"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

// serveTLS answers each TLS connection with "ok" on loopback.
func serveTLS(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(c, "ok")
			}()
		}
	}()
	return ln.Addr().String()
}

// resumes connects once with the client's session cache and says whether
// the server resumed the session.
func resumes(t *testing.T, addr string, client *tls.Config) bool {
	t.Helper()
	c, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, err := io.ReadAll(c); err != nil || string(b) != "ok" { // reading takes the TLS 1.3 ticket in
		t.Fatalf("read %q %v", b, err)
	}
	return c.ConnectionState().DidResume
}

func ticketClient(version uint16) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "social.test", MinVersion: version, MaxVersion: version,
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
}

// A ticket resumes within the day; a ticket whose key was retired (24 h
// after the key was made) does not, even though the ticket itself is
// younger than a day; and none is resumed a day after it was issued.
func TestTicketUnderRetiredKeyNotResumed(t *testing.T) {
	for _, v := range []struct {
		name string
		ver  uint16
	}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			clk := testenv.NewClock(time.Now())
			s := selfSigned(t, t.TempDir(), []string{"social.test"}, clk.Now)
			addr := serveTLS(t, s.TLSConfig())

			client := ticketClient(v.ver)
			if resumes(t, addr, client) {
				t.Fatal("first connection resumed")
			}
			if !resumes(t, addr, client) {
				t.Fatal("a fresh ticket was not resumed")
			}

			clk.Advance(11 * time.Hour) // the first key still encrypts: new clients' tickets are under it
			late, other := ticketClient(v.ver), ticketClient(v.ver)
			resumes(t, addr, late)
			resumes(t, addr, other)
			clk.Advance(2 * time.Hour) // 13 h: a second key encrypts, the first still decrypts
			if !resumes(t, addr, other) {
				t.Fatal("a ticket under the previous, still live key was not resumed")
			}
			clk.Advance(11*time.Hour + 2*time.Minute) // 24 h after the first key: retired; late's ticket is 13 h old
			if resumes(t, addr, late) {
				t.Fatal("a ticket under a retired key was resumed")
			}
		})
	}
}

// Go keeps a resumed TLS 1.2 session's master secret in a fresh ticket;
// fedigate sends an empty one instead, so a session is never resumed a day
// after its first ticket, however often it was resumed in between.
func TestTLS12ResumptionNotRenewedPastADay(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	s := selfSigned(t, t.TempDir(), []string{"social.test"}, clk.Now)
	addr := serveTLS(t, s.TLSConfig())
	client := ticketClient(tls.VersionTLS12)
	resumes(t, addr, client)
	for range 3 {
		clk.Advance(7 * time.Hour)
		resumes(t, addr, client)
	}
	clk.Advance(4 * time.Hour) // 25 h after the session began
	if resumes(t, addr, client) {
		t.Fatal("a TLS 1.2 session was resumed a day after it began")
	}
}

// Gateways sharing tls.state_dir resume each other's sessions; the keys
// are only in that directory, 0600, and a retired key leaves the file.
func TestTicketKeysSharedThroughStateDir(t *testing.T) {
	dir := t.TempDir()
	clk := testenv.NewClock(time.Now())
	a := selfSigned(t, dir, []string{"social.test"}, clk.Now)
	b := selfSigned(t, dir, []string{"social.test"}, clk.Now)
	addrA, addrB := serveTLS(t, a.TLSConfig()), serveTLS(t, b.TLSConfig())
	client := ticketClient(tls.VersionTLS13)
	resumes(t, addrA, client)
	if !resumes(t, addrB, client) {
		t.Fatal("gateway B did not resume gateway A's ticket")
	}
	path := filepath.Join(dir, ticketKeysFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	first, _ := os.ReadFile(path)
	clk.Advance(25 * time.Hour)
	resumes(t, addrA, ticketClient(tls.VersionTLS13)) // a handshake after the recheck refreshes the keys
	resumes(t, addrB, ticketClient(tls.VersionTLS13))
	now, _ := os.ReadFile(path)
	if lines := strings.Count(string(now), "\n"); lines != 1 || strings.Contains(string(now), strings.TrimSpace(string(first))) {
		t.Fatalf("after a day the file holds %d keys, the old one included: %v", lines, strings.Contains(string(now), string(first)))
	}
	c2 := ticketClient(tls.VersionTLS13)
	resumes(t, addrB, c2)
	if !resumes(t, addrA, c2) {
		t.Fatal("after rotation the gateways no longer share the key")
	}
}

// A damaged key file is a clear error naming the file and line.
func TestTicketKeyFileDamaged(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ticketKeysFile), []byte("1700000000 abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(configsSelfSigned(dir), []string{"social.test"}, Options{Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), ticketKeysFile+":1:") {
		t.Fatalf("err = %v", err)
	}
}

// Forged, truncated or replayed-from-the-future tickets are a full
// handshake, never an error or a panic.
func FuzzUnwrapTicket(f *testing.F) {
	clk := testenv.NewClock(time.Unix(1_800_000_000, 0))
	tk, err := newTicketer("", clk.Now, quiet())
	if err != nil {
		f.Fatal(err)
	}
	good, err := tk.wrap(tls.ConnectionState{Version: tls.VersionTLS13}, &tls.SessionState{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{1})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := tk.unwrap(b, tls.ConnectionState{})
		if err != nil {
			t.Fatal(err)
		}
		if ss != nil && string(b) != string(good) { // GCM over header and body: only the authentic ticket opens
			t.Fatalf("a forged ticket opened: %x", b)
		}
	})
}

func configsSelfSigned(dir string) configs.TLS {
	return configs.TLS{Mode: configs.TLSSelfSigned, StateDir: dir}
}

// The HTTP/3 listener uses the same tls.Config: quic-go wraps the hooks
// with its own, and a ticket under a retired key is not resumed there either.
func TestTicketsOverQUIC(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	s := selfSigned(t, t.TempDir(), []string{"social.test"}, clk.Now)
	conf := s.TLSConfig()
	conf.NextProtos = []string{"h3"}
	ln, err := quic.ListenAddr("127.0.0.1:0", conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				st, err := c.OpenUniStream()
				if err == nil {
					_, _ = st.Write([]byte("ok"))
					_ = st.Close()
				}
			}()
		}
	}()
	client := &tls.Config{InsecureSkipVerify: true, ServerName: "social.test", NextProtos: []string{"h3"},
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	dial := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := quic.DialAddr(ctx, ln.Addr().String(), client, &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseWithError(0, "")
		st, err := c.AcceptUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(st); err != nil || string(b) != "ok" {
			t.Fatalf("read %q %v", b, err)
		}
		return c.ConnectionState().TLS.DidResume
	}
	dial()
	if !dial() {
		t.Fatal("HTTP/3: a fresh ticket was not resumed")
	}
	clk.Advance(TicketKeyLife + 2*time.Minute)
	if dial() {
		t.Fatal("HTTP/3: a ticket under a retired key was resumed")
	}
}

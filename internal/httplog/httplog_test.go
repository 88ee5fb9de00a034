package httplog

import (
	"crypto/tls"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/internal/testenv"
)

// A TLS handshake that fails (what a scanner does all day) is one slog
// line at Debug, with the server's name, and nothing on the standard log.
func TestFailedHandshakeIsOneDebugLineNotStandardLog(t *testing.T) {
	var std strings.Builder
	log.SetOutput(&std)
	defer log.SetOutput(os.Stderr)
	var logs testenv.LogBuffer
	l := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ErrorLog: ErrorLog(l, "edge"),
		TLSConfig: &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, net.ErrClosed }}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // plain HTTP to a TLS port
	_, _ = c.Read(make([]byte, 512))
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for logs.Count("http server") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := logs.String()
	if logs.Count("http server") != 1 || !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "server=edge") || !strings.Contains(got, "TLS handshake error") {
		t.Fatalf("want one debug line naming the server and the handshake error, got:\n%s", got)
	}
	if std.Len() != 0 {
		t.Errorf("reached the standard logger: %q", std.String())
	}
}

func TestLevelOfEachKindOfLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want slog.Level
	}{
		{"http: panic serving 127.0.0.1:1234: boom", slog.LevelError},
		{"http2: panic serving 127.0.0.1:1234: boom", slog.LevelError},
		{"http: Accept error: accept tcp: too many open files; retrying in 5ms", slog.LevelWarn},
		{"http: superfluous response.WriteHeader call from main.handler", slog.LevelWarn},
		{"http: TLS handshake error from 1.2.3.4:5: EOF", slog.LevelDebug},
		{"httputil: ReverseProxy read error during body copy: unexpected EOF", slog.LevelDebug},
	} {
		if got := Level(tc.line); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.line, got, tc.want)
		}
	}
}

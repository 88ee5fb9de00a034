// Package httplog owns the one adapter from net/http's own error log
// (http.Server.ErrorLog, httputil.ReverseProxy.ErrorLog) to slog, used by
// every server fedigate runs (the edge in package proxy, the admin
// listener, the egress proxy), so nothing reaches the standard logger and
// every such line has the same shape: msg "http server", the server's
// name, and net/http's text in "error".
package httplog

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// ErrorLog returns a *log.Logger for ErrorLog fields that writes each line
// net/http logs to l, one slog record per line, tagged server=name. The
// level follows what the line means: a handler panic is Error; an accept
// error (out of file descriptors) and a handler's superfluous WriteHeader
// are Warn; everything else (TLS handshakes that fail, clients that send
// garbage or vanish: what scanners cause all day) is Debug. nil l =
// slog.Default().
func ErrorLog(l *slog.Logger, name string) *log.Logger {
	if l == nil {
		l = slog.Default()
	}
	return log.New(writer{l: l, name: name}, "", 0)
}

type writer struct {
	l    *slog.Logger
	name string
}

func (w writer) Write(p []byte) (int, error) {
	text := strings.TrimRight(string(p), "\r\n")
	level := Level(text)
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, "http server", "server", w.name, "error", text)
	}
	return len(p), nil
}

// Level is the slog level ErrorLog gives a line net/http logged.
func Level(text string) slog.Level {
	switch {
	case strings.Contains(text, "panic serving"): // http: and http2:
		return slog.LevelError
	case strings.HasPrefix(text, "http: Accept error"), strings.Contains(text, "superfluous response.WriteHeader"):
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

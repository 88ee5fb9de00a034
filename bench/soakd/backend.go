package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// runBackend is `soakd backend web|streaming ADDR`: the soak's stand-ins
// for Mastodon's Puma and its streaming server, as child processes so the
// soak can kill and restart them.
func runBackend(kind, addr string) {
	var h http.Handler
	switch kind {
	case "web":
		h = webBackend()
	case "streaming":
		h = http.HandlerFunc(streamingBackend)
	default:
		log.Fatalf("backend kind %q: want web or streaming", kind)
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

var (
	timeline = []byte(`[{"id":"1","content":"<p>hello</p>","account":{"acct":"alice"}},{"id":"2","content":"<p>soak</p>","account":{"acct":"bob"}}]`)
	actor    = []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://social.test/users/alice","type":"Person","preferredUsername":"alice","inbox":"https://social.test/users/alice/inbox"}`)
)

func webBackend() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/timelines/public", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(timeline)
	})
	mux.HandleFunc("GET /users/alice", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write(actor)
	})
	mux.HandleFunc("POST /users/alice/inbox", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!DOCTYPE html><title>backend</title>")
	})
	return mux
}

// streamingBackend accepts a websocket and sends a text frame every 200 ms
// until the client leaves.
func streamingBackend(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "websocket only", http.StatusBadRequest)
		return
	}
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
	if rw.Flush() != nil {
		return
	}
	go func() { _, _ = io.Copy(io.Discard, rw) }() // the client's frames (its close) end nothing here: the write fails
	for i := 0; i < 50; i++ {
		msg := fmt.Sprintf(`{"event":"update","payload":"%d"}`, i)
		if _, err := c.Write(append([]byte{0x81, byte(len(msg))}, msg...)); err != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func wsAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// wsSession opens a websocket over c (TLS to the gateway), reads two text
// frames and closes; an error says which step failed.
func wsSession(c net.Conn, host, path, client string) error {
	key := base64.StdEncoding.EncodeToString([]byte("soak-websocket-k"))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Forwarded-For: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, client, key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return &statusError{resp.StatusCode}
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		return fmt.Errorf("bad Sec-WebSocket-Accept")
	}
	for range 2 {
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := int(hdr[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(br, ext[:]); err != nil {
				return err
			}
			n = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			return fmt.Errorf("frame too large")
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return err
		}
	}
	_, err = c.Write([]byte{0x88, 0x80, 0, 0, 0, 0}) // masked close, empty
	return err
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// Command backend is the benchmark's stand-in for a fediverse backend: it
// answers every request with the same small JSON document, as Mastodon's
// /api/v1/instance would (smaller), over plain HTTP/1.1 keep-alive.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

var body = []byte(`{"uri":"social.example","title":"Bench","version":"4.3.0","stats":{"user_count":42,"status_count":1234,"domain_count":567},"registrations":true}`)

func main() {
	addr := flag.String("listen", "127.0.0.1:18080", "address to listen on")
	flag.Parse()
	length := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}

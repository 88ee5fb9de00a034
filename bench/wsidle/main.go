// Command wsidle is the peer of bench/ws-idle: with -backend it serves a
// streaming backend (echo websockets) on loopback; with -measure it opens
// N websockets through a proxy, leaves them idle, and prints the growth
// of the proxy's resident memory per websocket.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fedigate/fedigate/internal/wsload"
)

func main() {
	backend := flag.String("backend", "", "serve the streaming backend on this address")
	addr := flag.String("addr", "", "the proxy's HTTPS address")
	name := flag.String("name", "proxy", "the proxy's name in the output")
	pids := flag.String("pids", "", "comma-separated process ids whose RSS is summed (nginx: master and workers)")
	n := flag.Int("n", 2000, "idle websockets to open")
	flag.Parse()
	if *backend != "" {
		ln, err := net.Listen("tcp", *backend)
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal((&http.Server{Handler: wsload.NewBackend(), ReadHeaderTimeout: 10 * time.Second}).Serve(ln))
	}
	if *addr == "" || *pids == "" {
		fmt.Fprintln(os.Stderr, "usage: wsidle -backend ADDR | wsidle -addr HOST:PORT -pids PID[,PID] [-n N] [-name NAME]")
		os.Exit(2)
	}
	var ps []int
	for _, p := range strings.Split(*pids, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			log.Fatalf("-pids: %v", err)
		}
		ps = append(ps, v)
	}
	rss := func() int64 {
		var total int64
		for _, p := range ps {
			v, err := wsload.SettledRSS(p, 2*time.Second)
			if err != nil {
				log.Fatal(err)
			}
			total += v
		}
		return total
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := &wsload.Client{Addr: *addr, ServerName: "localhost"}
	const url = "wss://localhost/api/v1/streaming?stream=user"
	warm, err := c.OpenIdle(ctx, url, 50) // pools, TLS session state, first goroutines
	if err != nil {
		log.Fatalf("%s: warm-up: %v", *name, err)
	}
	wsload.CloseAll(warm)
	time.Sleep(time.Second)
	before := rss()
	conns, err := c.OpenIdle(ctx, url, *n)
	if err != nil {
		log.Fatalf("%s: %v", *name, err)
	}
	after := rss()
	wsload.CloseAll(conns)
	fmt.Printf("%-10s %8.1f KiB per idle websocket (RSS %6.1f -> %6.1f MiB, %d websockets)\n",
		*name, float64(after-before)/1024/float64(*n), float64(before)/(1<<20), float64(after)/(1<<20), *n)
}

// Command floor is the least a proxy built on Go's net/http server and
// crypto/tls can do for the benchmark's request: a TLS net/http server
// whose handler writes the GET on a pooled keep-alive connection to the
// backend, reads the response with http.ReadResponse and copies it back.
// No routing, limits, header hygiene, timeouts or logs. bench/run puts it
// beside nginx to show how much of fedigate's distance to nginx is the
// Go HTTP stack itself. It is not a proxy to run: it trusts the backend
// and checks nothing.
package main

import (
	"bufio"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
)

type backendConn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

type pool struct {
	addr string
	mu   sync.Mutex
	idle []*backendConn
}

func (p *pool) get() (*backendConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &backendConn{nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}, nil
}

func (p *pool) put(c *backendConn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18447", "HTTPS address to listen on")
	backend := flag.String("backend", "127.0.0.1:18080", "backend host:port")
	cert := flag.String("cert", "", "certificate PEM file")
	key := flag.String("key", "", "key PEM file")
	flag.Parse()
	p := &pool{addr: *backend}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := p.get()
		if err != nil {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		_, _ = c.bw.WriteString(r.Method + " " + r.URL.RequestURI() + " HTTP/1.1\r\nHost: " + r.Host +
			"\r\nX-Forwarded-For: " + r.RemoteAddr + "\r\n\r\n")
		if err := c.bw.Flush(); err != nil {
			c.nc.Close()
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		resp, err := http.ReadResponse(c.br, r)
		if err != nil {
			c.nc.Close()
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, err = io.Copy(w, resp.Body)
		resp.Body.Close()
		if err != nil || resp.Close {
			c.nc.Close()
			return
		}
		p.put(c)
	})
	log.Fatal(http.ListenAndServeTLS(*listen, *cert, *key, h))
}

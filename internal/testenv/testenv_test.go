package testenv

import (
	"net"
	"testing"
)

func TestRedisAndMicrosocksStart(t *testing.T) {
	r := Redis(t)
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := c.Read(buf); err != nil || string(buf) != "+PONG\r\n" {
		t.Fatalf("PING answered %q, %v", buf, err)
	}
	c.Close()
	s := Microsocks(t, "127.0.0.2")
	c, err = net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

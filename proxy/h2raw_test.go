package proxy

import (
	"bytes"
	"crypto/tls"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2Status sends one GET with a header X-Big-* fields holding big over a raw HTTP/2
// connection and returns the :status of the answer ("" when the
// connection ended without one).
func rawH2Status(t *testing.T, te *testEdge, big string) string {
	t.Helper()
	c, err := tls.Dial("tcp", te.Edge.Addr().String(), &tls.Config{RootCAs: te.pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "localhost"}, {Name: ":path", Value: "/"}} {
		_ = enc.WriteField(f)
	}
	for i := 0; i*1000 < len(big); i++ { // many fields, each under any string limit
		_ = enc.WriteField(hpack.HeaderField{Name: "x-big-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Value: big[i*1000 : min(len(big), i*1000+1000)]})
	}
	block := hb.Bytes()
	first := block
	if len(first) > 16000 {
		first = block[:16000]
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: len(first) == len(block)}); err != nil {
		t.Fatal(err)
	}
	for rest := block[len(first):]; len(rest) > 0; {
		n := min(len(rest), 16000)
		if err := fr.WriteContinuation(1, n == len(rest), rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return ""
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			return f.PseudoValue("status")
		case *http2.GoAwayFrame:
			t.Logf("goaway %v %s", f.ErrCode, f.DebugData())
			return ""
		case *http2.RSTStreamFrame:
			t.Logf("rst %v", f.ErrCode)
			return ""
		}
	}
}

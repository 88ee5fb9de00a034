package egress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// DoHResolver looks names up with DNS-over-HTTPS (RFC 8484, POST). With
// resolver = "doh" its Client dials through the SOCKS upstream, so no DNS
// server on the way learns where the gateway is.
type DoHResolver struct {
	URL    string       // e.g. https://1.1.1.1/dns-query
	Client *http.Client // must not use a proxy from the environment
}

// LookupNetIP asks for A and AAAA records ("ip"), or one of them ("ip4",
// "ip6"), and returns every address in the answers.
func (d *DoHResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var types []dnsmessage.Type
	switch network {
	case "ip":
		types = []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA}
	case "ip4":
		types = []dnsmessage.Type{dnsmessage.TypeA}
	case "ip6":
		types = []dnsmessage.Type{dnsmessage.TypeAAAA}
	default:
		return nil, fmt.Errorf("doh: network %q", network)
	}
	var out []netip.Addr
	var errs []error
	for _, t := range types {
		as, err := d.query(ctx, host, t)
		out = append(out, as...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(out) == 0 {
		if len(errs) == 0 {
			errs = append(errs, errNoAddress)
		}
		return nil, fmt.Errorf("doh lookup of %s: %w", host, errors.Join(errs...))
	}
	return out, nil
}

func (d *DoHResolver) query(ctx context.Context, host string, t dnsmessage.Type) ([]netip.Addr, error) {
	name, err := dnsmessage.NewName(host + ".")
	if err != nil {
		return nil, err
	}
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: t, Class: dnsmessage.ClassINET}},
	}
	body, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/dns-message")
	req.Header.Set("Accept", "application/dns-message")
	resp, err := d.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("doh server answered %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	var answer dnsmessage.Message
	if err := answer.Unpack(raw); err != nil {
		return nil, fmt.Errorf("doh answer: %w", err)
	}
	if answer.RCode != dnsmessage.RCodeSuccess {
		return nil, fmt.Errorf("doh: %s", answer.RCode)
	}
	var out []netip.Addr
	for _, rr := range answer.Answers {
		switch b := rr.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(b.A))
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(b.AAAA))
		}
	}
	return out, nil
}

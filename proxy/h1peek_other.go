//go:build !unix

package proxy

import "net"

// idlePeek is the Unix look at an idle connection's socket; elsewhere a
// pooled connection is judged by what its reader already buffered alone.
type idlePeek struct{}

func (p *idlePeek) init(net.Conn) {}

func (p *idlePeek) readable() bool { return false }

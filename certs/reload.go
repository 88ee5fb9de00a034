package certs

import (
	"crypto/tls"

	"github.com/fedigate/fedigate/configs"
)

// Pending is a certificate reload prepared and not yet served: a config
// reload prepares every part, and only when all of them built does it
// Commit them. A Pending never committed changes nothing.
type Pending struct {
	s     *Source
	files *tls.Certificate // files mode: the pair read
	mods  filesMods
	leaf  leafChoice // self-signed mode: the leaf to serve
}

// PrepareReload reads what may have changed without serving it: files
// mode loads and checks the PEM pair again; self-signed picks the stored
// leaf, or issues a new one in memory when it no longer fits; acme has
// nothing to prepare (certmagic renews by itself). On error (a bad new
// pair, say) nothing changed: the current certificate is still served.
func (s *Source) PrepareReload() (*Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &Pending{s: s}
	var err error
	switch s.cfg.Mode {
	case configs.TLSFiles:
		p.files, p.mods, err = s.readFiles()
	case configs.TLSSelfSigned:
		p.leaf, err = s.nextLeaf()
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Commit serves what PrepareReload read. A self-signed leaf issued by the
// prepare is written to tls.state_dir first; should that write fail, the
// new leaf is served anyway (it is valid; the next check writes it again)
// and the failure logged. Safe on a nil Pending (nothing to do).
func (p *Pending) Commit() {
	if p == nil {
		return
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p.files != nil:
		s.fileMod = p.mods
		s.serveFiles(p.files)
	case p.leaf.cert != nil:
		if p.leaf.key != nil {
			if err := p.leaf.save(s); err != nil {
				s.log.Error("self-signed leaf not written; serving it from memory", "dir", s.cfg.StateDir, "err", err)
			}
		}
		p.leaf.serve(s)
	}
}

package certs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Session tickets. Go's own keys live 7 days and its tickets are accepted
// for 7 days, so a stolen key opens a week of TLS 1.2 traffic. Here a key
// encrypts new tickets for TicketRotate, then only decrypts, and is erased
// TicketKeyLife after it was made; a ticket is accepted at most
// TicketKeyLife after it was issued, and only while its key lives. The
// keys are kept in state_dir/ticket-keys (0600), so gateways sharing the
// state directory resume each other's sessions; nothing else carries them.
//
// Go writes the advertised TLS 1.3 lifetime itself (7 days, with no hook to
// change it): a client may keep offering a ticket that this server
// refuses after a day; it then gets a full handshake.
const (
	TicketRotate  = 12 * time.Hour
	TicketKeyLife = 24 * time.Hour

	ticketKeysFile = "ticket-keys"
	ticketVersion  = 1
	ticketHeader   = 1 + 8 + 8 // version, key id, issued (Unix seconds)
	ticketRecheck  = time.Minute
	ticketSkew     = time.Minute // a ticket "issued" further ahead than this is refused
)

type ticketKey struct {
	id      [8]byte // the first bytes of SHA-256 of the key
	created time.Time
	raw     [32]byte
	aead    cipher.AEAD
}

type ticketSet struct {
	keys    []ticketKey // newest first; keys[0] encrypts
	checkAt time.Time   // when to look at the file again
}

// ticketer wraps and unwraps session tickets with rotating keys.
type ticketer struct {
	dir string // "" = keys in memory only
	now func() time.Time
	log *slog.Logger
	set atomic.Pointer[ticketSet]
	mu  sync.Mutex // one refresh at a time
}

func newTicketer(dir string, now func() time.Time, log *slog.Logger) (*ticketer, error) {
	t := &ticketer{dir: dir, now: now, log: log}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.refreshLocked(now()); err != nil {
		return nil, fmt.Errorf("session ticket keys: %w", err)
	}
	return t, nil
}

// configure makes c use the rotating keys (the HTTP/3 listener gets the
// same hooks: quic-go calls them through its own).
func (t *ticketer) configure(c *tls.Config) {
	c.WrapSession = t.wrap
	c.UnwrapSession = t.unwrap
}

// current returns the live keys, refreshing them once a minute.
func (t *ticketer) current(now time.Time) *ticketSet {
	s := t.set.Load()
	if now.Before(s.checkAt) || !t.mu.TryLock() { // another handshake is refreshing: use what there is
		return s
	}
	defer t.mu.Unlock()
	if err := t.refreshLocked(now); err != nil {
		t.log.Error("session ticket keys: refresh failed; resumption is off until it works", "err", err)
		// no key may outlive its life: keep only the ones still valid
		live := &ticketSet{checkAt: now.Add(ticketRecheck)}
		for _, k := range s.keys {
			if now.Sub(k.created) < TicketKeyLife {
				live.keys = append(live.keys, k)
			}
		}
		t.set.Store(live)
		return live
	}
	return t.set.Load()
}

func (t *ticketer) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	now := t.now()
	s := t.current(now)
	// A resumed TLS 1.2 session keeps its master secret; a new ticket for
	// it would carry that secret past its first ticket's day. RFC 5077
	// section 3.3: a server that does not want to renew sends an empty one.
	if cs.Version < tls.VersionTLS13 && cs.DidResume || len(s.keys) == 0 || now.Sub(s.keys[0].created) >= TicketRotate {
		return []byte{}, nil
	}
	plain, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	k := &s.keys[0]
	out := make([]byte, ticketHeader, ticketHeader+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out[0] = ticketVersion
	copy(out[1:9], k.id[:])
	binary.BigEndian.PutUint64(out[9:17], uint64(now.Unix()))
	nonce := out[ticketHeader : ticketHeader+k.aead.NonceSize()]
	out = out[:ticketHeader+len(nonce)]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, nonce, plain, out[:ticketHeader]), nil
}

// unwrap returns the session of a ticket issued under a live key within
// TicketKeyLife; anything else is (nil, nil): a full handshake, no error.
func (t *ticketer) unwrap(identity []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	now := t.now()
	s := t.current(now)
	if len(identity) < ticketHeader+12 || identity[0] != ticketVersion {
		return nil, nil
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(identity[9:17])), 0)
	if now.Sub(issued) > TicketKeyLife || issued.Sub(now) > ticketSkew {
		return nil, nil
	}
	for i := range s.keys {
		k := &s.keys[i]
		if [8]byte(identity[1:9]) != k.id || now.Sub(k.created) >= TicketKeyLife {
			continue
		}
		ns := k.aead.NonceSize()
		plain, err := k.aead.Open(nil, identity[ticketHeader:ticketHeader+ns], identity[ticketHeader+ns:], identity[:ticketHeader])
		if err != nil {
			return nil, nil
		}
		ss, err := tls.ParseSessionState(plain)
		if err != nil {
			return nil, nil
		}
		return ss, nil
	}
	return nil, nil
}

// refreshLocked reads the key file, drops keys past their life, adds a
// new key when the newest is due for rotation, and writes the file back.
// Gateways sharing the directory lock the file, so they agree on one key.
// t.mu is held.
func (t *ticketer) refreshLocked(now time.Time) error {
	var keys []ticketKey
	if t.dir == "" {
		if s := t.set.Load(); s != nil {
			keys = s.keys
		}
	} else {
		if err := os.MkdirAll(t.dir, 0o700); err != nil {
			return err
		}
		unlock, err := lockFile(filepath.Join(t.dir, ticketKeysFile+".lock"))
		if err != nil {
			return err
		}
		defer unlock()
		if keys, err = readTicketKeys(filepath.Join(t.dir, ticketKeysFile), t.log); err != nil {
			return err
		}
	}
	live := keys[:0:0]
	for _, k := range keys {
		if age := now.Sub(k.created); age < TicketKeyLife && age > -ticketSkew {
			live = append(live, k)
		}
	}
	slices.SortFunc(live, func(a, b ticketKey) int { return b.created.Compare(a.created) })
	changed := len(live) != len(keys)
	if len(live) == 0 || now.Sub(live[0].created) >= TicketRotate {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return err
		}
		k, err := makeTicketKey(raw, now)
		if err != nil {
			return err
		}
		live = append([]ticketKey{k}, live...)
		changed = true
		t.log.Info("session ticket key rotated", "keys_live", len(live), "retire_after", TicketKeyLife.String())
	}
	if changed && t.dir != "" {
		if err := writeTicketKeys(filepath.Join(t.dir, ticketKeysFile), live); err != nil {
			return err
		}
	}
	t.set.Store(&ticketSet{keys: live, checkAt: now.Add(ticketRecheck)})
	return nil
}

func makeTicketKey(raw [32]byte, created time.Time) (ticketKey, error) {
	block, err := aes.NewCipher(raw[:])
	if err != nil {
		return ticketKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return ticketKey{}, err
	}
	sum := sha256.Sum256(raw[:])
	return ticketKey{id: [8]byte(sum[:8]), created: created, raw: raw, aead: aead}, nil
}

// The key file: one key a line, "created-unix-seconds hex-key".
func readTicketKeys(path string, log *slog.Logger) ([]ticketKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := tightenKey(path, log); err != nil {
		return nil, err
	}
	var keys []ticketKey
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		created, hexKey, ok := strings.Cut(line, " ")
		sec, err := strconv.ParseInt(created, 10, 64)
		raw, err2 := hex.DecodeString(hexKey)
		if !ok || err != nil || err2 != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%s:%d: want \"unix-seconds 64-hex-digit-key\"", path, i+1)
		}
		k, err := makeTicketKey([32]byte(raw), time.Unix(sec, 0))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func writeTicketKeys(path string, keys []ticketKey) error {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d %s\n", k.created.Unix(), hex.EncodeToString(k.raw[:]))
	}
	return writeAtomic(path, []byte(b.String()), 0o600)
}

// lockFile takes an exclusive lock on path (created 0600), for gateways
// sharing a state directory.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

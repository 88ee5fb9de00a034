package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fedigate/fedigate/internal/copybuf"
	"github.com/maypok86/otter/v2"
)

// The disk tier: one file per primary key in dir (0700), each 0600,
// written to a temporary file and renamed, so a reader sees a whole file
// or none. A file is "FGC1", the length of the metadata (4 bytes), the
// metadata (JSON: key, and per variant its status, fields, times, body
// length), the bodies, and the SHA-256 of all that; Get checks the length
// and the checksum before anything is served, and drops a file that
// fails. The index (which files, how large) is otter again, weighed in
// bytes against max_disk; an evicted or replaced file is removed. Files
// stay across restarts: Open takes up those it finds.
type diskStore struct {
	dir       string
	max       int64
	log       *slog.Logger
	idx       *otter.Cache[string, diskFile]
	gen       atomic.Int64
	evictions atomic.Int64
	lastErr   atomic.Pointer[string]
}

type diskFile struct {
	name string // file name in dir
	size int64
}

const diskMagic = "FGC1"

type diskMeta struct {
	Key      string        `json:"key"`
	Variants []diskVariant `json:"variants"`
}

type diskVariant struct {
	Secondary  string        `json:"secondary"`
	Vary       []string      `json:"vary,omitempty"`
	Status     int           `json:"status"`
	Header     http.Header   `json:"header"`
	BodyLen    int           `json:"body_len"`
	ReqTime    time.Time     `json:"req_time"`
	RespTime   time.Time     `json:"resp_time"`
	InitialAge time.Duration `json:"initial_age"`
	Lifetime   time.Duration `json:"lifetime"`
}

// OpenDisk opens (creating it 0700) the disk tier in dir, bounded by
// maxBytes, and takes up the files already there; temporary files a
// crash left are removed.
func OpenDisk(dir string, maxBytes int64, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache.dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("cache.dir: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cache.dir %s is open to others (%v) and cannot be closed: %w", dir, st.Mode().Perm(), err)
		}
	}
	d := &diskStore{dir: dir, max: maxBytes, log: log}
	d.gen.Store(time.Now().UnixNano())
	d.idx, err = otter.New(&otter.Options[string, diskFile]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, f diskFile) uint32 { return uint32(min(f.size, 1<<32-1)) },
		OnAtomicDeletion: func(ev otter.DeletionEvent[string, diskFile]) {
			if ev.Cause.IsEviction() {
				d.evictions.Add(1)
			}
		},
		OnDeletion: func(ev otter.DeletionEvent[string, diskFile]) {
			_ = os.Remove(filepath.Join(d.dir, ev.Value.name)) // evicted, replaced or invalidated
		},
	})
	if err != nil {
		return nil, err
	}
	if err := d.load(); err != nil {
		d.idx.StopAllGoroutines()
		return nil, err
	}
	return d, nil
}

// load indexes the files in dir, oldest first, keeping the newest
// generation of each key.
func (d *diskStore) load() error {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("cache.dir: %w", err)
	}
	type found struct {
		diskFile
		gen int64
	}
	best := map[string]found{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "tmp-") {
			_ = os.Remove(filepath.Join(d.dir, name))
			continue
		}
		id, gen, ok := parseDiskName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		f := found{diskFile{name, info.Size()}, gen}
		if old, dup := best[id]; dup {
			if old.gen > gen {
				_ = os.Remove(filepath.Join(d.dir, name))
				continue
			}
			_ = os.Remove(filepath.Join(d.dir, old.name))
		}
		best[id] = f
	}
	for id, f := range best {
		d.idx.Set(id, f.diskFile)
	}
	return nil
}

func diskID(key []byte) string {
	s := sha256.Sum256(key)
	return hex.EncodeToString(s[:])
}

func parseDiskName(name string) (id string, gen int64, ok bool) {
	base, ok := strings.CutSuffix(name, ".obj")
	if !ok {
		return "", 0, false
	}
	id, g, ok := strings.Cut(base, "-")
	if !ok || len(id) != 64 {
		return "", 0, false
	}
	gen, err := strconv.ParseInt(g, 10, 64)
	return id, gen, err == nil
}

func (d *diskStore) Get(_ uint64, key []byte) *Entry {
	id := diskID(key)
	f, ok := d.idx.GetIfPresent(id)
	if !ok {
		return nil
	}
	e, err := d.read(f, key)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("cache: dropping a disk object that fails its check", "file", f.name, "err", err)
		}
		_ = os.Remove(filepath.Join(d.dir, f.name)) // at once, not when the index gets to it
		d.idx.Invalidate(id)
		return nil
	}
	return e
}

// smallFile is the size up to which a disk object is read whole into
// memory; a larger one is served from its open file, so concurrent hits
// of large media hold a copy buffer each, not the body.
const smallFile = 2 * copybuf.Size

// maxDiskMeta bounds a file's metadata (its fields), read into memory.
const maxDiskMeta = 1 << 20

// read opens a file and checks its length and checksum (streaming it
// through SHA-256, never whole in memory) before anything of it is used.
func (d *diskStore) read(f diskFile, key []byte) (*Entry, error) {
	fh, err := os.Open(filepath.Join(d.dir, f.name))
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			_ = fh.Close()
		}
	}()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size != f.size || size < int64(len(diskMagic))+4+sha256.Size {
		return nil, fmt.Errorf("length %d, want %d", size, f.size)
	}
	end := size - sha256.Size // the bytes the checksum covers
	var all []byte            // the whole file, when it is small
	h := sha256.New()
	if size <= smallFile {
		all = make([]byte, size)
		if _, err := fh.ReadAt(all, 0); err != nil {
			return nil, err
		}
		h.Write(all[:end])
	} else {
		bp := copybuf.Shared.Borrow()
		_, err := io.CopyBuffer(h, io.NewSectionReader(fh, 0, end), *bp)
		copybuf.Shared.Return(bp)
		if err != nil {
			return nil, err
		}
	}
	at := func(p []byte, off int64) error { // from memory when the file is there
		if all != nil {
			copy(p, all[off:])
			return nil
		}
		_, err := fh.ReadAt(p, off)
		return err
	}
	var sum [sha256.Size]byte
	var hdr [8]byte
	if err := at(sum[:], end); err != nil {
		return nil, err
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return nil, errors.New("checksum mismatch")
	}
	if err := at(hdr[:], 0); err != nil || string(hdr[:4]) != diskMagic {
		return nil, errors.New("not a cache file")
	}
	n := int64(binary.BigEndian.Uint32(hdr[4:8]))
	if n > maxDiskMeta || 8+n > end {
		return nil, errors.New("metadata past the end")
	}
	meta := make([]byte, n)
	if err := at(meta, 8); err != nil {
		return nil, err
	}
	var m diskMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if m.Key != string(key) {
		return nil, errors.New("another key")
	}
	off := 8 + n
	e := &Entry{Key: m.Key}
	for _, v := range m.Variants {
		bl := int64(v.BodyLen)
		if bl < 0 || bl > end-off {
			return nil, errors.New("body past the end")
		}
		cc, err := ParseCacheControl(v.Header["Cache-Control"])
		if err != nil {
			return nil, err
		}
		o := &Object{
			Secondary: v.Secondary, Vary: v.Vary, Status: v.Status, Header: v.Header,
			ReqTime: v.ReqTime, RespTime: v.RespTime,
			InitialAge: v.InitialAge, Lifetime: v.Lifetime, CC: cc, cl: []string{strconv.Itoa(v.BodyLen)},
		}
		if all != nil {
			o.Body = all[off : off+bl : off+bl]
		} else {
			o.file = &fileBody{f: fh, off: off, n: bl}
		}
		e.Variants = append(e.Variants, o)
		off += bl
	}
	if off != end {
		return nil, errors.New("bytes after the bodies")
	}
	keep = all == nil
	return e, nil
}

func (d *diskStore) Set(_ uint64, e *Entry) error {
	if e.weight() > d.max/4 {
		return ErrTooLarge
	}
	m := diskMeta{Key: e.Key}
	for _, o := range e.Variants {
		m.Variants = append(m.Variants, diskVariant{
			Secondary: o.Secondary, Vary: o.Vary, Status: o.Status, Header: o.Header, BodyLen: int(o.bodySize()),
			ReqTime: o.ReqTime, RespTime: o.RespTime, InitialAge: o.InitialAge, Lifetime: o.Lifetime,
		})
	}
	meta, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(meta) > maxDiskMeta {
		return ErrTooLarge // read would refuse it
	}
	tmp, err := os.CreateTemp(d.dir, "tmp-*")
	if err != nil {
		d.fail(err)
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after the rename; after a failure, removed
	h := sha256.New()
	out := io.MultiWriter(tmp, h)
	var hdr [8]byte
	copy(hdr[:], diskMagic)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(meta)))
	size := int64(8 + len(meta) + sha256.Size)
	_, err = out.Write(hdr[:])
	if err == nil {
		_, err = out.Write(meta)
	}
	for _, o := range e.Variants {
		if err == nil {
			err = o.writeBody(out) // a body from another file is copied, not loaded
		}
		size += o.bodySize()
	}
	if err == nil {
		_, err = tmp.Write(h.Sum(nil))
	}
	if err != nil {
		_ = tmp.Close()
		d.fail(err)
		return err
	}
	if err := tmp.Close(); err != nil {
		d.fail(err)
		return err
	}
	id := diskID([]byte(e.Key))
	name := id + "-" + strconv.FormatInt(d.gen.Add(1), 10) + ".obj"
	if err := os.Rename(tmp.Name(), filepath.Join(d.dir, name)); err != nil {
		d.fail(err)
		return err
	}
	d.lastErr.Store(nil)
	d.idx.Set(id, diskFile{name: name, size: size})
	return nil
}

func (d *diskStore) fail(err error) {
	s := err.Error()
	d.lastErr.Store(&s)
	d.log.Warn("cache: disk tier write failed", "dir", d.dir, "err", err)
}

func (d *diskStore) Delete(_ uint64, key []byte) { d.idx.Invalidate(diskID(key)) }

func (d *diskStore) Stats() TierStats {
	d.idx.CleanUp() // the weighed size is brought up to date by maintenance
	return TierStats{Objects: int64(d.idx.EstimatedSize()), Bytes: int64(d.idx.WeightedSize()), Evictions: d.evictions.Load()}
}

// ready: the directory is there and takes a file.
func (d *diskStore) ready() error {
	f, err := os.CreateTemp(d.dir, "tmp-ready-*")
	if err != nil {
		return fmt.Errorf("disk tier %s: %w", d.dir, err)
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	if s := d.lastErr.Load(); s != nil {
		return fmt.Errorf("disk tier %s: last write failed: %s", d.dir, *s)
	}
	return nil
}

// Close stops the index; the files stay for the next start.
func (d *diskStore) Close() error {
	d.idx.StopAllGoroutines()
	return nil
}

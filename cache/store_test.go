package cache

import (
	"bytes"
	"hash/maphash"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// storeKinds are the stores the conformance suite runs on: the same table
// for each.
var storeKinds = []struct {
	name string
	open func(t *testing.T, max int64) Store
}{
	{"memory", func(t *testing.T, max int64) Store {
		m, err := newMemoryStore(max)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return m
	}},
	{"disk", func(t *testing.T, max int64) Store {
		d, err := OpenDisk(filepath.Join(t.TempDir(), "cache"), max, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}},
}

func testEntry(key string, bodies ...string) *Entry {
	e := &Entry{Key: key}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, b := range bodies {
		h := http.Header{"Cache-Control": {"max-age=60"}, "Content-Type": {"text/plain"}}
		cc, _ := ParseCacheControl(h["Cache-Control"])
		e.Variants = append(e.Variants, &Object{
			Secondary: "Accept:" + strconv.Itoa(i) + "\n", Vary: []string{"Accept"}, Status: 200, Header: h, Body: []byte(b),
			ReqTime: now, RespTime: now, InitialAge: time.Second, Lifetime: time.Minute, CC: cc, cl: []string{strconv.Itoa(len(b))},
		})
	}
	return e
}

func sameEntry(t *testing.T, got, want *Entry) {
	t.Helper()
	if got == nil {
		t.Fatal("entry missing")
	}
	if got.Key != want.Key || len(got.Variants) != len(want.Variants) {
		t.Fatalf("entry %q with %d variants, want %q with %d", got.Key, len(got.Variants), want.Key, len(want.Variants))
	}
	for i, o := range got.Variants {
		w := want.Variants[i]
		if o.Secondary != w.Secondary || !bytes.Equal(o.Body, w.Body) || o.Status != w.Status || o.Header.Get("Content-Type") != w.Header.Get("Content-Type") ||
			!o.RespTime.Equal(w.RespTime) || o.Lifetime != w.Lifetime || o.InitialAge != w.InitialAge || o.CC.MaxAge != w.CC.MaxAge || o.cl[0] != w.cl[0] {
			t.Fatalf("variant %d differs: %+v, want %+v", i, o, w)
		}
	}
}

// TestStoreConformance: one table for every Store.
func TestStoreConformance(t *testing.T) {
	seed := maphash.MakeSeed()
	hash := func(k string) uint64 { return maphash.String(seed, k) }
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Run("get what was set", func(t *testing.T) {
				s := kind.open(t, 16<<20)
				e := testEntry("https://a.example/p", "one", "two")
				if err := s.Set(hash(e.Key), e); err != nil {
					t.Fatal(err)
				}
				sameEntry(t, s.Get(hash(e.Key), []byte(e.Key)), e)
				if st := s.Stats(); st.Objects != 1 || st.Bytes <= 0 {
					t.Fatalf("stats %+v", st)
				}
			})
			t.Run("absent key", func(t *testing.T) {
				s := kind.open(t, 16<<20)
				if s.Get(hash("https://a.example/x"), []byte("https://a.example/x")) != nil {
					t.Fatal("an absent key was found")
				}
			})
			t.Run("same hash, another key", func(t *testing.T) {
				s := kind.open(t, 16<<20)
				e := testEntry("https://a.example/p", "one")
				_ = s.Set(7, e)
				if s.Get(7, []byte("https://a.example/q")) != nil {
					t.Fatal("another key with the same hash was served")
				}
				s.Delete(7, []byte("https://a.example/q"))
				if s.Get(7, []byte(e.Key)) == nil {
					t.Fatal("deleting another key with the same hash dropped this one")
				}
			})
			t.Run("replace", func(t *testing.T) {
				s := kind.open(t, 16<<20)
				k := "https://a.example/p"
				_ = s.Set(hash(k), testEntry(k, "old"))
				e := testEntry(k, "new")
				_ = s.Set(hash(k), e)
				sameEntry(t, s.Get(hash(k), []byte(k)), e)
			})
			t.Run("delete", func(t *testing.T) {
				s := kind.open(t, 16<<20)
				k := "https://a.example/p"
				_ = s.Set(hash(k), testEntry(k, "x"))
				s.Delete(hash(k), []byte(k))
				if s.Get(hash(k), []byte(k)) != nil {
					t.Fatal("deleted entry still served")
				}
			})
			t.Run("too large", func(t *testing.T) {
				s := kind.open(t, 1<<20)
				k := "https://a.example/big"
				if err := s.Set(hash(k), testEntry(k, string(make([]byte, 300<<10)))); err != ErrTooLarge {
					t.Fatalf("err %v, want ErrTooLarge", err)
				}
			})
			t.Run("bounded", func(t *testing.T) {
				s := kind.open(t, 1<<20)
				body := string(make([]byte, 32<<10))
				for i := 0; i < 200; i++ { // 6.4 MB through a 1 MB store
					k := "https://a.example/" + strconv.Itoa(i)
					if err := s.Set(hash(k), testEntry(k, body)); err != nil {
						t.Fatal(err)
					}
				}
				cleanUp(s)
				if st := s.Stats(); st.Bytes > 1<<20 || st.Evictions == 0 {
					t.Fatalf("stats %+v: want at most 1 MB and evictions", st)
				}
			})
		})
	}
}

func cleanUp(s Store) {
	switch s := s.(type) {
	case *memoryStore:
		s.c.CleanUp()
	case *diskStore:
		s.idx.CleanUp()
	}
}

// TestDiskKeptAcrossRestart: what the disk tier stored is there after it
// is closed and opened again; a temporary file a crash left is removed.
func TestDiskKeptAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	d, err := OpenDisk(dir, 16<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := testEntry("https://a.example/media/1.png", "png-bytes", "webp-bytes")
	if err := d.Set(0, e); err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
	if err := os.WriteFile(filepath.Join(dir, "tmp-crashed"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = OpenDisk(dir, 16<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sameEntry(t, d.Get(0, []byte(e.Key)), e)
	if _, err := os.Stat(filepath.Join(dir, "tmp-crashed")); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", st.Mode().Perm())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.obj"))
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	fi, _ := os.Stat(files[0])
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestDiskCorruptedFileNeverServed: a file whose bytes changed, or that was
// cut short, fails its check: it is dropped, never served.
func TestDiskCorruptedFileNeverServed(t *testing.T) {
	for name, spoil := range map[string]func(b []byte) []byte{
		"a flipped byte in the body": func(b []byte) []byte { b[len(b)-40] ^= 1; return b },
		"cut short":                  func(b []byte) []byte { return b[:len(b)-10] },
		"a flipped byte in the meta": func(b []byte) []byte { b[12] ^= 1; return b },
		"grown":                      func(b []byte) []byte { return append(b, 'x') },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			d, err := OpenDisk(dir, 16<<20, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			e := testEntry("https://a.example/media/1.png", "0123456789012345678901234567890123456789012345678901234567890123456789")
			_ = d.Set(0, e)
			files, _ := filepath.Glob(filepath.Join(dir, "*.obj"))
			b, _ := os.ReadFile(files[0])
			if err := os.WriteFile(files[0], spoil(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := d.Get(0, []byte(e.Key)); got != nil {
				t.Fatal("a corrupted file was served")
			}
			cleanUp(d)
			if _, err := os.Stat(files[0]); !os.IsNotExist(err) {
				t.Fatalf("corrupted file not removed: %v", err)
			}
		})
	}
}

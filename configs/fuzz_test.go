package configs

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any bytes give either a valid config or faults in
// file:line form; never a panic, never both, never neither.
func FuzzParse(f *testing.F) {
	for _, p := range Presets {
		b, _ := Example(p)
		f.Add(b)
	}
	files, _ := filepath.Glob("testdata/*/*.toml")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg=%v err=%v: want exactly one", cfg != nil, err)
		}
		if err != nil {
			if len(Faults(err)) == 0 {
				t.Fatalf("error without faults: %v", err)
			}
			return
		}
		fs := &faults{file: "again", pos: positions{}}
		validate(cfg, fs, nil)
		if fs.err() != nil {
			t.Fatalf("a loaded config does not validate again: %v", fs.err())
		}
	})
}

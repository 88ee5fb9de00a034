package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDisk(t *testing.T) {
	base := t.TempDir()
	if msg, err := CheckDisk(filepath.Join(base, "new"), 1<<30); err != nil || !strings.Contains(msg, "will be made") {
		t.Fatalf("missing dir: %q %v", msg, err)
	}
	open := filepath.Join(base, "open")
	_ = os.Mkdir(open, 0o755)
	_ = os.Chmod(open, 0o755)
	if _, err := CheckDisk(open, 1<<30); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("a dir open to others: %v", err)
	}
	file := filepath.Join(base, "file")
	_ = os.WriteFile(file, nil, 0o600)
	if _, err := CheckDisk(file, 1<<30); err == nil {
		t.Fatal("a file taken for the dir")
	}
	dir := filepath.Join(base, "cache")
	d, err := OpenDisk(dir, 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Set(0, testEntry("https://a.example/media/1", "bytes"))
	_ = d.Close()
	if msg, err := CheckDisk(dir, 1<<30); err != nil || !strings.Contains(msg, "1 objects") {
		t.Fatalf("good dir: %q %v", msg, err)
	}
}

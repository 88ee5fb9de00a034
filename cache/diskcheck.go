package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CheckDisk reports on the disk tier at dir without opening it (a running
// gateway may hold it): the directory is there or can be made, is not open
// to others, takes a file; and how much it holds against maxBytes. For
// doctor.
func CheckDisk(dir string, maxBytes int64) (string, error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(dir)
		if _, err := os.Stat(parent); err != nil {
			return "", fmt.Errorf("%s does not exist and its parent cannot be read: %w", dir, err)
		}
		return dir + " will be made (0700) at start", nil
	case err != nil:
		return "", err
	case !st.IsDir():
		return "", fmt.Errorf("%s is not a directory", dir)
	case st.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("%s is open to others (%v): chmod 700 %s", dir, st.Mode().Perm(), dir)
	}
	f, err := os.CreateTemp(dir, "doctor-*")
	if err != nil {
		return "", fmt.Errorf("%s takes no file: %w", dir, err)
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	files, _ := filepath.Glob(filepath.Join(dir, "*.obj"))
	var total int64
	for _, name := range files {
		if fi, err := os.Stat(name); err == nil {
			total += fi.Size()
		}
	}
	return fmt.Sprintf("%s: %d objects, %d of %d bytes", dir, len(files), total, maxBytes), nil
}

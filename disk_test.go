package mpq_test

import (
	"os"
	"path/filepath"

	"github.com/mpq-go/mpq/internal/shm"
)

// Durable queues refuse tmpfs. Where the temporary directory is in memory,
// the tests' temporary directories go to the user's cache directory instead.
func init() {
	if disk, err := shm.OnDisk(os.TempDir()); err != nil || disk {
		return
	}
	if d, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(d, "mpq-test")
		if os.MkdirAll(p, 0o700) == nil {
			os.Setenv("TMPDIR", p)
		}
	}
}

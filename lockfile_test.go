package mpq_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/mpq-go/mpq/internal/ring"
)

// lockFileName matches the name of a queue's lock file, .mpq-ID.lock.
var lockFileName = regexp.MustCompile(`^\.mpq-([0-9a-f]{8})\.lock$`)

// isLockOfQueue reports whether path is the lock file of a queue file
// beside it: one whose header has its id.
func isLockOfQueue(path string) bool {
	m := lockFileName.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return false
	}
	id, err := strconv.ParseUint(m[1], 16, 32)
	if err != nil {
		return false
	}
	queues, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.mpq"))
	for _, q := range queues {
		f, err := os.Open(q)
		if err != nil {
			continue
		}
		page := make([]byte, ring.PageSize)
		_, err = f.ReadAt(page, 0)
		f.Close()
		if g, herr := ring.ReadHeader(page); err == nil && herr == nil && g.LockFile && g.LockID == uint32(id) {
			return true
		}
	}
	return false
}

// dirEntries counts the entries of dir as dirFiles lists them.
func dirEntries(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if !isLockOfQueue(filepath.Join(dir, e.Name())) {
			n++
		}
	}
	return n
}

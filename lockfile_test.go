package mpq_test

import (
	"os"
	"path/filepath"
	"regexp"
)

// lockFileName matches the name of a queue's lock file.
var lockFileName = regexp.MustCompile(`^\.(.+\.mpq)\.[0-9a-f]{8}\.lock$`)

// isLockOfQueue reports whether path is the lock file of a queue file
// beside it.
func isLockOfQueue(path string) bool {
	m := lockFileName.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return false
	}
	_, err := os.Lstat(filepath.Join(filepath.Dir(path), m[1]))
	return err == nil
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

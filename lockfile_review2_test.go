//go:build linux

package mpq_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mpq-go/mpq"
)

// TestEmptyLockFileSharedByCopy: a lock file left empty (its maker was
// killed between creating it and writing the queue file's inode into it,
// or it is being made right now) is taken by checkInode as "this queue
// file's" for every opener, and never gets an inode written: a copy of the
// queue file and the original can then be open at once, sharing slots and
// the open lock, which the inode check exists to prevent.
func TestEmptyLockFileSharedByCopy(t *testing.T) {
	dir := t.TempDir()
	opts := &mpq.Options{Dir: dir, Capacity: 64 << 10, Durable: true}
	q, err := mpq.Create("a", opts)
	if err != nil {
		t.Fatal(err)
	}
	lock := q.Stats().LockFile
	q.Close()
	b, err := os.ReadFile(filepath.Join(dir, "a.mpq"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.mpq"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	// What a maker killed after its O_EXCL create, before writeInode, leaves.
	if err := os.Truncate(lock, 0); err != nil {
		t.Fatal(err)
	}
	c, err := mpq.Open("b", &mpq.Options{Dir: dir, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := mpq.Open("a", &mpq.Options{Dir: dir, NoCreate: true})
	if err == nil {
		a.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("Open of the original while its copy is open on the same (empty) lock file: %v; want fs.ErrExist", err)
	}
}

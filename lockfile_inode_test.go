//go:build linux

package mpq_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// TestEmptyLockFileSharedByCopy: a lock file cut short (lock files are
// made complete, so only damage or an older maker leaves one) is no queue
// file's: the first opener takes it over, and a copy of the queue file
// and the original are never open at once on it.
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

// TestStillAttachedBtrfsDev: on btrfs, stat's st_dev is the subvolume's
// anonymous device while /proc/PID/maps shows the superblock's; a queue
// file moved to another directory while another process has it open is
// still refused there (the maps are matched by inode), not given a new
// lock file beside the one the first process holds.
func TestStillAttachedBtrfsDev(t *testing.T) {
	root := testutil.Btrfs(t, 300<<20)
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	q, err := mpq.Create("q", &mpq.Options{Dir: a, Capacity: 64 << 10, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	c := testutil.Start(t, "attach", namedQueue(a, "q"), testutil.Stdin())
	c.Expect("attached", 30*time.Second)
	defer func() { c.CloseStdin(); c.Succeed(30 * time.Second) }()
	if err := os.Rename(filepath.Join(a, "q.mpq"), filepath.Join(b, "q.mpq")); err != nil {
		t.Fatal(err)
	}
	q2, err := mpq.Open("q", &mpq.Options{Dir: b, NoCreate: true})
	if err == nil {
		q2.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", c.Pid())) {
		t.Fatalf("on btrfs, Open of the moved file while process %d has it open: %v; want fs.ErrNotExist naming it", c.Pid(), err)
	}
}

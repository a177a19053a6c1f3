//go:build linux

package mpq_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
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

// TestStillAttachedBtrfsDev: on btrfs, stat's st_dev is the subvolume's
// anonymous device while /proc/PID/maps shows the superblock's, so mayUse
// never finds the queue file in a live process's maps: a queue file moved
// to another directory while another process has it open gets a new lock
// file, and a second process attaches beside the first with locks the
// first does not hold (for a durable queue: alone, recovering it under
// the live process). The same holds for overlayfs on kernels whose maps
// show the underlying file.
func TestStillAttachedBtrfsDev(t *testing.T) {
	root := btrfsDir(t)
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

// btrfsDir mounts a fresh btrfs file system on a loop device for the test.
func btrfsDir(t *testing.T) string {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if os.Geteuid() != 0 {
		fail("needs root to mount btrfs")
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		fail("needs mkfs.btrfs (btrfs-progs)")
	}
	img := filepath.Join(t.TempDir(), "btrfs.img")
	mnt := t.TempDir()
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 300<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		fail("mkfs.btrfs: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		fail("mount btrfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

//go:build linux

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
)

// mountTmpfs mounts a tmpfs of size (such as "2m") at a new directory and
// unmounts it when the test ends. A test that cannot mount (not root, no
// CAP_SYS_ADMIN) is skipped, and fails where CI=true. It is this module's
// copy of the library's internal/testutil.Tmpfs, which another module may
// not import.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a %s tmpfs at %s: %v (CI runs as root and must be able to)", size, dir, err)
		}
		t.Skipf("cannot mount a tmpfs here (%v); CI=true makes this a failure", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// A queue that does not fit its file system is refused by create and by
// put of a URL, with exit status 1 and the library's whole message, the
// fix included; nothing is left behind.
func TestCreateNoSpace(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	for _, args := range [][]string{
		{"create", "--capacity", "8MiB", "q"},
		{"put", "shm:q?capacity=8MiB", "x"},
	} {
		code, stderr := runMPQ(t, dir, nil, args...)
		if code != exitFailure || !strings.Contains(stderr, "no space for a queue file of ") || !strings.Contains(stderr, "use a smaller Capacity") {
			t.Errorf("mpq %q on a 2 MiB tmpfs: exit %d, stderr %q; want 1, no space and the fix", args, code, stderr)
		}
		if strings.Contains(stderr, "panic") || strings.Contains(stderr, "fatal error") {
			t.Errorf("mpq %q crashed: %s", args, stderr)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
	if code, stderr := runMPQ(t, dir, nil, "create", "--capacity", "64KiB", "small"); code != 0 {
		t.Errorf("create of a 64 KiB queue there: exit %d, %s", code, stderr)
	}
}

// A queue file with a hole in it, on a file system another file has since
// filled: put cannot back the queue, and exits 1 saying so, with the fix,
// instead of dying of SIGBUS; the queue is left as it was.
func TestPutUnbackedNoSpace(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	createQueue(t, "q", &mpq.Options{Dir: dir, Capacity: 1 << 20}).Close()
	f, err := os.OpenFile(filepath.Join(dir, "q.mpq"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 64<<10, 900<<10)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 4096); err == nil; {
		_, err = filler.Write(chunk)
	}
	filler.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the file system: %v; want ENOSPC", err)
	}
	code, stderr := runMPQ(t, dir, nil, "put", "q", "hello")
	if code != exitFailure || !strings.Contains(stderr, "of storage that the queue file of ") || !strings.Contains(stderr, "make room in this file system") {
		t.Errorf("put into a sparse queue on a full file system: exit %d, stderr %q; want 1, no space and the fix", code, stderr)
	}
	s, err := mpq.Inspect("q", &mpq.Options{Dir: dir})
	if err != nil || s.Puts != 0 || len(s.Procs) != 0 {
		t.Errorf("queue after the refused put: %v, %d puts, %d processes; want 0 and 0", err, s.Puts, len(s.Procs))
	}
}

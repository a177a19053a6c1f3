package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
)

// gc removes the lock files of queues that are gone, once they are old and
// nobody holds them, and keeps those of live queues, young ones (a queue
// may be being created) and held ones.
func TestGcOrphanLockFiles(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("live", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// A message keeps it from gc, which removes empty queues nobody has
	// open; its lock file, old and held by nobody, is kept for the queue.
	if err := q.TryPut([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	live := q.Stats().LockFile
	q.Close()
	if live == "" {
		t.Fatal("Stats.LockFile is empty for a named queue")
	}
	old := time.Now().Add(-2 * orphanAge)
	orphan := filepath.Join(dir, ".mpq-0000000a.lock")
	young := filepath.Join(dir, ".mpq-0000000b.lock")
	held := filepath.Join(dir, ".mpq-0000000c.lock")
	for _, p := range []string{orphan, young, held} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{orphan, held, live} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(held, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK, Start: 3, Len: 1}); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(mpqBin, "gc", "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mpq gc: %v\n%s", err, out)
	}
	if want := "removed lock file " + filepath.Base(orphan) + " of no queue"; !strings.Contains(string(out), want) {
		t.Errorf("gc output lacks %q:\n%s", want, out)
	}
	for p, want := range map[string]bool{orphan: false, young: true, held: true, live: true} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("after gc, %s exists: %v; want %v\n%s", filepath.Base(p), err == nil, want, out)
		}
	}
	// The queue still opens and holds its message.
	q, err = mpq.Open("live", &mpq.Options{Dir: dir, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if m, err := q.TryGet(); err != nil || string(m) != "kept" {
		t.Errorf("TryGet after gc: %q, %v; want %q", m, err, "kept")
	}
}

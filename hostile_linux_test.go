package mpq_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// Hostile and stalled peers on one machine: what a process that may only
// read a queue, and one stopped while it holds a lock, can do to the
// others (see Security in the package documentation).

func init() {
	testutil.Register("read-locker", runReadLocker)
	testutil.Register("open-lock-holder", runOpenLockHolder)
}

// runReadLocker plays a user who may only read queue MPQ_TEST_NAME: it
// read-locks the whole queue file (which it can), reports what it could do
// besides, and holds its locks until it is killed.
func runReadLocker() error {
	dir, name := os.Getenv(envDir), os.Getenv(envName)
	f, err := os.Open(filepath.Join(dir, name+".mpq"))
	if err != nil {
		return err
	}
	all := &unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, all); err != nil {
		// Some bytes are write-locked: lock every other one of the
		// file's first 64 KiB, where the header and tables are.
		for off := int64(0); off < 64<<10; off++ {
			unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_RDLCK, Start: off, Len: 1})
		}
		testutil.Say("locked the queue file but for its write-locked bytes")
	} else {
		testutil.Say("locked the queue file")
	}
	locks, _ := filepath.Glob(filepath.Join(dir, ".mpq-*.lock"))
	testutil.Say("lock files %d", len(locks))
	for _, lp := range locks {
		_, err := os.Open(lp)
		testutil.Say("open lock file: permission denied %v", errors.Is(err, fs.ErrPermission))
	}
	_, err = mpq.Open(name, &mpq.Options{Dir: dir, NoCreate: true})
	testutil.Say("open queue: permission denied %v", errors.Is(err, fs.ErrPermission))
	st, err := mpq.Inspect(name, &mpq.Options{Dir: dir})
	testutil.Say("inspect: %v len %d", err, st.Len)
	testutil.BlockForever()
	return nil
}

// runOpenLockHolder removes queue MPQ_TEST_NAME with RemoveIf, whose
// function says "holding" and never returns: it holds the queue's open
// lock until it is killed.
func runOpenLockHolder() error {
	return mpq.RemoveIf(os.Getenv(envName), &mpq.Options{Dir: os.Getenv(envDir)}, func(mpq.Stats) error {
		testutil.Say("holding")
		testutil.BlockForever()
		return nil
	})
}

// TestStalledOpenLockHolder: a process stopped (SIGSTOP) while it holds a
// queue's open lock makes OpenContext wait only as long as its context
// says; once the holder is gone, Open works.
func TestStalledOpenLockHolder(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("q", &mpq.Options{Dir: dir, Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	h := testutil.Start(t, "open-lock-holder", namedQueue(dir, "q"))
	h.Expect("holding", 30*time.Second)
	if err := h.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if o, err := mpq.OpenContext(ctx, "q", &mpq.Options{Dir: dir}); err != context.DeadlineExceeded {
		if err == nil {
			o.Close()
		}
		t.Fatalf("OpenContext while a stopped process holds the open lock: %v; want context.DeadlineExceeded", err)
	}
	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	if _, err := mpq.OpenContext(cctx, "q", &mpq.Options{Dir: dir}); err != context.Canceled {
		t.Errorf("OpenContext with a cancelled context: %v; want context.Canceled", err)
	}
	if _, err := mpq.OpenContext(nil, "q", nil); !errors.Is(err, mpq.ErrNilContext) { //nolint:staticcheck // a nil context on purpose
		t.Errorf("OpenContext(nil): %v; want ErrNilContext", err)
	}
	h.Kill()
	o, err := mpq.OpenContext(t.Context(), "q", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatalf("OpenContext once the holder died: %v", err)
	}
	o.Close()
}

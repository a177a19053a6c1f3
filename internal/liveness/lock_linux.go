//go:build linux

package liveness

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/shm"
)

// reopen opens the file again, creating an open file description that only
// this attachment uses (descriptors passed to children share the original).
func reopen(f *os.File) (*os.File, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, shm.Explain("reopen queue file for locking", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func (t *Table) flock(slot int) *unix.Flock_t {
	return &unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: t.off(slot), Len: 1}
}

func (t *Table) tryLock(slot int) (bool, error) {
	err := unix.FcntlFlock(t.f.Fd(), unix.F_OFD_SETLK, t.flock(slot))
	switch err {
	case nil:
		return true, nil
	case unix.EAGAIN, unix.EACCES:
		return false, nil
	}
	return false, fmt.Errorf("mpq: lock process slot: %w", err)
}

func (t *Table) test(slot int) (bool, error) {
	if t.f == nil {
		return true, nil // an observer that cannot see the locks
	}
	lk := t.flock(slot)
	if err := unix.FcntlFlock(t.f.Fd(), unix.F_OFD_GETLK, lk); err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}

func (t *Table) release() {}

func osYield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// Commands of the lock that serializes attaching (see lockWait).
const (
	cmdTryLock = unix.F_OFD_SETLK
	cmdUnlock  = unix.F_OFD_SETLK
)

// enterProcess is nothing here: open-file-description locks taken through
// two open file descriptions conflict within one process too.
func enterProcess(context.Context, *os.File) (leave func(), err error) { return func() {}, nil }

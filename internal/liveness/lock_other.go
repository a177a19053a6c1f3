//go:build unix && !linux

package liveness

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/shm"
)

// Without open-file-description locks, locks belong to the process: a
// process never sees its own locks through F_GETLK, so attachments of this
// process are also recorded here.
var (
	mineMu sync.Mutex
	mine   = map[mineKey]bool{}
)

type mineKey struct {
	dev, ino uint64
	slot     int
}

func (t *Table) key(slot int) mineKey {
	var k mineKey
	if fi, err := t.f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			k.dev, k.ino = uint64(st.Dev), uint64(st.Ino)
		}
	}
	k.slot = slot
	return k
}

func reopen(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, shm.Explain("dup queue file for locking", err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func (t *Table) flock(slot int) *unix.Flock_t {
	return &unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: t.off(slot), Len: 1}
}

func (t *Table) tryLock(slot int) (bool, error) {
	mineMu.Lock()
	defer mineMu.Unlock()
	k := t.key(slot)
	if mine[k] {
		return false, nil
	}
	err := unix.FcntlFlock(t.f.Fd(), unix.F_SETLK, t.flock(slot))
	switch err {
	case nil:
		mine[k] = true
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
	mineMu.Lock()
	held := mine[t.key(slot)]
	mineMu.Unlock()
	if held {
		return true, nil
	}
	lk := t.flock(slot)
	if err := unix.FcntlFlock(t.f.Fd(), unix.F_GETLK, lk); err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}

func (t *Table) release() {
	if t.slot < 0 {
		return
	}
	mineMu.Lock()
	delete(mine, t.key(t.slot))
	mineMu.Unlock()
}

func osYield() {}

// Commands of the lock that serializes attaching (see lockWait).
const (
	cmdTryLock = unix.F_SETLK
	cmdUnlock  = unix.F_SETLK
)

// The open locks this process holds, by file: POSIX locks do not keep two
// attachments of one process apart, so these do.
var (
	procMu   sync.Mutex
	procSems = map[[2]uint64]chan struct{}{}
)

// enterProcess takes this process's lock on the file f, waiting for it
// until ctx is done, and returns the function that lets go of it.
func enterProcess(ctx context.Context, f *os.File) (leave func(), err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("mpq: examine queue file for opening: %w", err)
	}
	k := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	procMu.Lock()
	c := procSems[k]
	if c == nil {
		c = make(chan struct{}, 1)
		procSems[k] = c
	}
	procMu.Unlock()
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Package liveness records which processes are attached to a queue file.
//
// Every attached process holds an exclusive lock on one byte of the file: the
// first byte of its slot in the process table. The kernel drops the lock when
// the process dies, however it dies, so anyone can tell a dead owner from a
// live one by testing the lock. On Linux the locks are open-file-description
// locks (F_OFD_SETLK), taken through a private reopening of the file so that
// no child process inheriting a descriptor keeps them alive; other Unix
// systems fall back to process-associated POSIX locks (see the package mpq
// documentation for what that costs).
package liveness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoSlot means every slot of the process table is taken.
var ErrNoSlot = errors.New("mpq: too many processes attached to the queue")

// Table is one attachment's view of the process table of a queue file.
type Table struct {
	f     *os.File // private open file description carrying the locks
	slot  int
	slots int
	off   func(slot int) int64

	observer bool // made by Observe: holds no slot, does not own f
}

// Attach takes the first free slot of slots, whose lock bytes are at off(i).
func Attach(f *os.File, slots int, off func(slot int) int64) (*Table, error) {
	lf, err := reopen(f)
	if err != nil {
		return nil, err
	}
	t, err := attach(lf, slots, off)
	if err != nil {
		lf.Close()
		return nil, err
	}
	return t, nil
}

// AttachFirst is Attach for a caller that must know whether it is the only
// attached process, and act on it before anyone else attaches: it takes an
// exclusive lock on the byte at openOff, waiting for it, before taking a
// slot, and keeps it until the caller runs release. Every process that
// attaches with AttachFirst is thus serialized. It waits for the lock until
// ctx is done, and then returns ctx.Err(). release is never nil: on an
// error it does nothing, so that a caller may defer it at once.
func AttachFirst(ctx context.Context, f *os.File, slots int, off func(slot int) int64, openOff int64) (t *Table, alone bool, release func(), err error) {
	lf, err := reopen(f)
	if err != nil {
		return nil, false, nop, err
	}
	release, err = lockOpen(ctx, lf, openOff)
	if err != nil {
		lf.Close()
		return nil, false, nop, err
	}
	t, err = attach(lf, slots, off)
	if err != nil {
		release()
		lf.Close()
		return nil, false, nop, err
	}
	alone = true
	for i := 0; i < slots && alone; i++ {
		alone = i == t.slot || !t.Held(i)
	}
	return t, alone, release, nil
}

// attach takes the first free slot through lf, which the Table owns if it
// succeeds; the caller closes lf if it fails.
func attach(lf *os.File, slots int, off func(slot int) int64) (*Table, error) {
	t := &Table{f: lf, slot: -1, slots: slots, off: off}
	for i := 0; i < slots; i++ {
		ok, err := t.tryLock(i)
		if err != nil {
			return nil, err
		}
		if ok {
			t.slot = i
			return t, nil
		}
	}
	return nil, noSlot(slots)
}

// noSlot is ErrNoSlot for a table of slots slots, explained.
func noSlot(slots int) error {
	return fmt.Errorf("%w: all %d slots of its process table are taken, one by each open handle of a live process (each Open, Create, OpenFile and New takes one; mpq stat lists them): close handles that are not needed, share one handle among the goroutines of a process, or spread the processes over more queues", ErrNoSlot, slots)
}

// nop is the release function of a failed LockOpen or AttachFirst.
func nop() {}

// Slot is the slot this attachment holds.
func (t *Table) Slot() int { return t.slot }

// Held reports whether another attachment holds the lock of slot.
func (t *Table) Held(slot int) bool {
	if slot < 0 || slot >= t.slots {
		return false
	}
	held, err := t.test(slot)
	// A failing test must not declare a live process dead.
	return held || err != nil
}

// Yield gives up the processor to other threads (sched_yield), and to this
// process's other goroutines only when it has a single P: a Gosched on a
// process with an idle P wakes a thread to look for work (the runtime's
// wakep), which on a machine of few CPUs takes the CPU from the very
// process the spinner waits for. (A Submit then Wait of proc.Pool on 2
// CPUs: p50 11-14 µs with a Gosched at each yield, 2.6-3.8 µs without.)
// Goroutines readied meanwhile are taken by the other Ps, or run when the
// spin ends (Options.Spin).
func (t *Table) Yield() {
	if runtime.GOMAXPROCS(0) == 1 {
		runtime.Gosched()
	}
	osYield()
}

// Close releases the slot.
func (t *Table) Close() error {
	if t.observer {
		return nil
	}
	t.release()
	return t.f.Close()
}

// tryLockByte takes an exclusive lock on the byte at off, if it is free.
func tryLockByte(f *os.File, off int64) (bool, error) {
	lk := &unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: off, Len: 1}
	for {
		switch err := unix.FcntlFlock(f.Fd(), cmdTryLock, lk); err {
		case nil:
			return true, nil
		case unix.EAGAIN, unix.EACCES:
			return false, nil
		case unix.EINTR:
		default:
			return false, fmt.Errorf("mpq: lock queue file for opening: %w", err)
		}
	}
}

// Bounds of the pause between two tries of a lock another process holds.
// The open lock is held for the time of an attach, a few microseconds to
// a few milliseconds, or of a durable queue's recovery.
const (
	minPause = 20 * time.Microsecond
	maxPause = 10 * time.Millisecond
)

// lockWait takes an exclusive lock on the byte at off, trying again until
// ctx is done (a blocking F_SETLKW would not notice ctx, nor a signal the
// Go runtime handles).
func lockWait(ctx context.Context, f *os.File, off int64) error {
	var timer *time.Timer
	for pause := minPause; ; pause = min(2*pause, maxPause) {
		ok, err := tryLockByte(f, off)
		if ok || err != nil {
			return err
		}
		if timer == nil {
			timer = time.NewTimer(pause)
			defer timer.Stop()
		} else {
			timer.Reset(pause)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

func unlock(f *os.File, off int64) {
	unix.FcntlFlock(f.Fd(), cmdUnlock, &unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart, Start: off, Len: 1})
}

// Observe returns a Table that takes no slot, for a caller that only tests
// which slots are held. It uses f as it is, which may be read-only, and
// closing the Table leaves f open. With f nil, which is for a caller that
// cannot open the file holding the locks, every slot counts as held.
func Observe(f *os.File, slots int, off func(slot int) int64) *Table {
	return &Table{f: f, slot: -1, slots: slots, off: off, observer: true}
}

// LockOpen takes the lock AttachFirst takes at openOff, waiting for it
// until ctx is done, without attaching: while the caller holds it, no
// process attaches through AttachFirst. It returns the function that
// releases it, which is never nil: on an error it does nothing.
func LockOpen(ctx context.Context, f *os.File, openOff int64) (release func(), err error) {
	lf, err := reopen(f)
	if err != nil {
		return nop, err
	}
	unlockOpen, err := lockOpen(ctx, lf, openOff)
	if err != nil {
		lf.Close()
		return nop, err
	}
	return func() {
		unlockOpen()
		lf.Close()
	}, nil
}

// LockOpen is the package's LockOpen through the table's own open file
// description: it needs no descriptor. Release it before closing t.
func (t *Table) LockOpen(ctx context.Context, openOff int64) (release func(), err error) {
	return lockOpen(ctx, t.f, openOff)
}

// lockOpen takes the exclusive lock on the byte at openOff of lf, waiting
// for it until ctx is done, and returns the function that releases it.
func lockOpen(ctx context.Context, lf *os.File, openOff int64) (release func(), err error) {
	leave, err := enterProcess(ctx, lf)
	if err != nil {
		return nil, err
	}
	if err := lockWait(ctx, lf, openOff); err != nil {
		leave()
		return nil, err
	}
	return func() {
		unlock(lf, openOff)
		leave()
	}, nil
}

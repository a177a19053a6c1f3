package mpq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/mpq-go/mpq/internal/futex"
	"github.com/mpq-go/mpq/internal/liveness"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

// checkNew checks the options of a queue about to be created as name.
func checkNew(name string, s settings) error {
	if s.geometry.DeadLetter == name {
		return fmt.Errorf("%w: queue %s cannot be its own DeadLetter", ErrInvalidOptions, name)
	}
	if s.geometry.Durable {
		disk, err := shm.OnDisk(s.dir)
		if err != nil {
			return fmt.Errorf("mpq: queue directory %s: %w", s.dir, err)
		}
		if !disk {
			return fmt.Errorf("%w: Durable queue in %s, which is in memory (tmpfs): set Dir to a directory on disk", ErrInvalidOptions, s.dir)
		}
	}
	return nil
}

// errUnlinked means the file attached to is no longer the named queue's:
// it was removed (or replaced) while it was being opened.
var errUnlinked = errors.New("mpq: queue file removed while opening it")

// attach attaches to the queue file f: it maps f (unless mem is already its
// mapping), validates it and takes a process slot; it takes ownership of f.
// A durable queue that no other process has open is recovered first. For a
// named queue, path is its file's path: attaching then takes the open
// lock, which RemoveIf holds while it removes an idle queue, and fails
// with errUnlinked if f is no longer at path.
//
// made is nil for a file that exists already, or what this process took
// in the file it has just created before linking it into place: a new file
// has nothing to recover.
//
// Waiting for other processes (for the open lock) lasts until ctx is done.
func attach(ctx context.Context, f *os.File, mem []byte, s settings, path string, made *created) (h *handle, err error) {
	var (
		lt      *liveness.Table
		release = func() {}
	)
	if made != nil {
		lt, release = made.lt, made.unlock
	}
	defer func() {
		release()
		if err != nil {
			if lt != nil {
				lt.Close()
			}
			if mem != nil {
				shm.Unmap(mem)
			}
			f.Close()
		}
	}()
	// Another process may shrink the file while we read it: a fault on the
	// mapping here fails the open rather than the process.
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if v := recover(); v != nil {
			off, ok := ring.FaultOffset(v, mem)
			if !ok {
				panic(v)
			}
			h, err = nil, fmt.Errorf("%w: its memory faulted at offset %d while it was opened: the file was truncated, or a page of it removed, meanwhile", ErrCorrupt, off)
		}
	}(debug.SetPanicOnFault(true))
	size, err := shm.Size(f)
	if err != nil || size < ring.PageSize {
		return nil, fmt.Errorf("%w: %s is %s, not a queue file: open a queue by name, or pass the descriptor of one (Queue.File) to OpenFile", ErrIncompatible, where(f, path), shm.Describe(f))
	}
	if mem == nil {
		if mem, err = mapFile(f, size, path); err != nil {
			return nil, err
		}
	}
	g, err := ring.ReadHeader(mem)
	if err != nil {
		return nil, err
	}
	if lt != nil {
		if !linked(f, path) {
			err = errUnlinked
		}
	} else {
		lt, release, err = join(ctx, f, &mem, &size, g, path)
	}
	if err == nil {
		_, err = ring.ReadGeometry(mem, size)
	}
	if err != nil {
		return nil, err
	}
	r, err := ring.Attach(mem, size, env{lt}, lt.Slot(), os.Getpid())
	if err != nil {
		return nil, err
	}
	if shm.CannotFault(f) {
		r.CannotFault()
	}
	r.SweepWaiters()
	return newHandle(f, lt, mem, r, s.spin), nil
}

// newQueue makes a Queue of a handle, with what s asks of it.
func newQueue(h *handle, s settings, name, path string) *Queue {
	q := &Queue{handle: h, name: name, path: path, dir: s.dir, lease: s.lease}
	if h.r.Geometry().Durable {
		switch {
		case s.sync == SyncNever:
		case s.sync > 0:
			q.syncer = newSyncer(q, time.Duration(s.sync))
		default:
			q.syncPut = true
		}
	}
	return q
}

// mapFile maps the queue file f of size bytes, once the file system has
// storage for all of it.
func mapFile(f *os.File, size int64, path string) ([]byte, error) {
	if size > ring.MinSize(ring.MaxCapacity) {
		return nil, fmt.Errorf("%w: file of %d bytes is larger than any queue", ErrCorrupt, size)
	}
	// A file made sparse (copied, made by an older mpq, a hole punched into
	// it) gets its storage now, or fails here with ErrNoSpace, rather than
	// a Put later with SIGBUS.
	if err := shm.Back(f, size, dirOf(f, path)); err != nil {
		return nil, err
	}
	return shm.Map(f, size)
}

// join takes a process slot in the existing queue file f, mapped at *mem,
// and for a named queue the open lock, which release lets go of. A durable
// queue that no other process has open is recovered, which may remap it.
// lt and release are what was taken, on error too. The locks are in the
// queue's lock file if it has one (see lockfile.go), which for a queue
// handed over by descriptor (path is "") is found from f's path.
func join(ctx context.Context, f *os.File, mem *[]byte, size *int64, g ring.Geometry, path string) (lt *liveness.Table, release func(), err error) {
	release = func() {}
	locks := f // the file whose bytes the processes lock
	// ours reports whether the lock file is still the queue's, once its
	// locks are held: a copy of the queue may have taken it over between
	// openLockFile and the locking, or mpq gc removed it.
	ours := func() bool { return true }
	if g.LockFile {
		if path == "" {
			if path, err = fdPath(f); err != nil {
				return nil, release, err
			}
		}
		var (
			lf   *os.File
			made bool
		)
		if lf, made, err = openLockFile(f, path, g, *mem); err != nil {
			return nil, release, err
		}
		defer lf.Close() // the table locks through its own reopening of it
		lp, ino := lockPath(path, g.LockID), fileOf(f).ino
		defer func() {
			if made && errors.Is(err, errUnlinked) && !linked(f, path) && lockStillOurs(lf, lp, ino) {
				os.Remove(lp) // made for a queue removed meanwhile
			}
		}()
		locks = lf
		ours = func() bool { return lockStillOurs(lf, lp, ino) }
	}
	switch {
	case g.Durable:
		var alone bool
		lt, alone, release, err = liveness.AttachFirst(ctx, locks, ring.MaxProcs, ring.SlotOffset, openLockOffset)
		if err != nil {
			return nil, func() {}, err
		}
		if path != "" && (!linked(f, path) || !ours()) {
			err = errUnlinked
		} else if alone {
			err = recoverFile(f, mem, size, g, dirOf(f, path))
		}
	case path != "":
		// Only the open lock: whether we are alone matters to recovery,
		// which a queue in memory does not need.
		if release, err = liveness.LockOpen(ctx, locks, openLockOffset); err != nil {
			return nil, func() {}, err
		}
		if lt, err = liveness.Attach(locks, ring.MaxProcs, ring.SlotOffset); err == nil && (!linked(f, path) || !ours()) {
			err = errUnlinked
		}
	default:
		lt, err = liveness.Attach(locks, ring.MaxProcs, ring.SlotOffset)
	}
	return lt, release, err
}

// where names a queue file for an error message: its path, or its
// descriptor.
func where(f *os.File, path string) string {
	if path != "" {
		return path
	}
	return fmt.Sprintf("descriptor %d (%s)", f.Fd(), f.Name())
}

// dirOf is where the queue file f lives, for error messages: the directory
// of its path, or what the descriptor is.
func dirOf(f *os.File, path string) string {
	if path != "" {
		return filepath.Dir(path)
	}
	return where(f, path)
}

// openLockOffset is the byte of a queue's locks (its lock file, or its
// file) that processes lock while
// they attach to a named queue: so that exactly one recovers a durable
// queue after a crash, and so that RemoveIf sees every process that
// attaches to a queue before it removes it.
const openLockOffset = 1

// created is what the process that creates a queue file takes in it before
// it links the file into place: its slot, the open lock, and the lock
// file it made.
type created struct {
	lt       *liveness.Table
	unlock   func()
	lockPath string // of the lock file made, "" if none
}

// release lets go of what was taken, for a creation that failed: the lock
// file too, which no one else can have found.
func (c *created) release() {
	if c.unlock != nil {
		c.unlock()
	}
	if c.lt != nil {
		c.lt.Close()
	}
	if c.lockPath != "" {
		os.Remove(c.lockPath)
	}
}

// exists reports whether there is a file at path.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// linked reports whether f is the file at path.
func linked(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, pi)
}

// recoverFile recovers a durable queue that no other process has open:
// it restores the size of a truncated file, lets the ring drop damaged
// records, and flushes the result.
func recoverFile(f *os.File, mem *[]byte, size *int64, g ring.Geometry, dir string) error {
	if want := ring.MinSize(g.Capacity); *size < want {
		if err := f.Truncate(want); err != nil {
			return fmt.Errorf("mpq: restore the size of a truncated queue file: %w", err)
		}
		if err := shm.Back(f, want, dir); err != nil {
			return err
		}
		shm.Unmap(*mem)
		*mem = nil
		m, err := shm.Map(f, want)
		if err != nil {
			return err
		}
		*mem, *size = m, want
	}
	if _, err := ring.Recover(*mem); err != nil {
		return err
	}
	if err := shm.Sync(f); err != nil {
		return fmt.Errorf("mpq: flush recovered queue: %w", err)
	}
	return nil
}

// env connects a ring to the process table and the futex.
type env struct{ *liveness.Table }

func (env) Wake(addr *uint32) int { return futex.Wake(addr, 1<<30) }

package mpq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/liveness"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

// A Queue is a handle on a bounded multi-producer, multi-consumer message
// queue in shared memory. Any number of processes may open the same queue
// and Put and Get concurrently; all methods of one handle are safe for
// concurrent use by multiple goroutines.
//
// A message is an arbitrary byte slice of at most the queue's maximum
// message size, copied into the queue by Put and out of it by Get.
type Queue struct {
	*handle
	name string
	path string
	dir  string // where named queues of this handle's options live: for the dead-letter queue

	lease   time.Duration
	syncPut bool       // durable, SyncEveryPut
	syncer  *syncer    // durable, SyncEvery: nil otherwise
	deadMu  sync.Mutex // guards dead
	dead    *Queue     // the dead-letter queue, once opened
}

// Open opens the named queue, creating it if it does not exist (unless
// opts.NoCreate is set). opts may be nil.
//
// A process that is opening the queue, recovering a durable one or
// removing it with [RemoveIf] holds its open lock meanwhile, for
// microseconds to milliseconds unless it is stopped (SIGSTOP, a debugger)
// or RemoveIf's function dawdles. Open waits for it for at most
// [OpenWait], then fails with an error wrapping context.DeadlineExceeded
// that says so; [OpenContext] waits as long as its context allows.
func Open(name string, opts *Options) (*Queue, error) {
	ctx, cancel := context.WithTimeout(context.Background(), OpenWait)
	defer cancel()
	q, err := open(ctx, name, opts, true)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("mpq: open queue %s: %w: another process has held its open lock for %v (it is stopped, or busy recovering or removing the queue): use OpenContext to wait longer", name, err, OpenWait)
	}
	return q, err
}

// OpenWait is how long [Open] and [RemoveIf] wait for a queue's open lock.
const OpenWait = time.Minute

// OpenContext is [Open], waiting for the queue's open lock until ctx is
// done; it then returns ctx.Err(). Nothing it waits for is held by a
// process that may only read the queue: see Security in the package
// documentation.
func OpenContext(ctx context.Context, name string, opts *Options) (*Queue, error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := open(ctx, name, opts, true)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil, ctx.Err()
	}
	return q, err
}

// Create creates the named queue and opens it. It fails with an error
// wrapping fs.ErrExist if the queue exists. It waits for no other process.
func Create(name string, opts *Options) (*Queue, error) {
	return open(context.Background(), name, opts, false)
}

// open opens or creates the named queue; mayExist is false for Create.
func open(ctx context.Context, name string, opts *Options, mayExist bool) (*Queue, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	if s.noCreate && !mayExist {
		return nil, fmt.Errorf("%w: Create with NoCreate set", ErrInvalidOptions)
	}
	if s.label != "" {
		return nil, fmt.Errorf("%w: Label %q on named queue %s: a named queue's name is its label; drop Label, or make an anonymous queue with New", ErrInvalidOptions, s.label, name)
	}
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return nil, err
	}
	if s.private {
		if err := shm.CheckPrivate(s.dir); err != nil {
			return nil, err
		}
	}
	// Each pass either opens the file at path or makes it; another process
	// may make, or remove, the file between the two, and then we look
	// again.
	for vanished, unlinkedAgain := 0, 0; ; {
		if mayExist {
			q, missing, err := openExisting(ctx, name, path, s)
			if errors.Is(err, errUnlinked) && unlinkedAgain < 1000 {
				unlinkedAgain++
				continue // removed (or its lock file taken) while we opened it: look again
			}
			if !missing || s.noCreate {
				return q, err
			}
		}
		q, race, err := create(ctx, name, path, s)
		switch {
		case race == madeElsewhere && mayExist:
			continue // created by another process meanwhile: open it
		case race == unlinked:
			continue // removed as soon as it was made: make it again
		case race == dirGone && vanished < 100:
			vanished++
			continue // the directory was removed meanwhile (by a failed call that made it)
		case errors.Is(err, ErrNoSpace) && mayExist && exists(path):
			continue // another process made it first, taking the room: open it
		}
		return q, err
	}
}

// A race is what another process did to a queue file while this one
// opened or made it.
type race int

const (
	noRace        race = iota
	madeElsewhere      // another process made the file first
	unlinked           // the file was removed as soon as it was made
	dirGone            // the directory was removed meanwhile
)

// openExisting opens the queue file at path. missing reports that there
// is none; errUnlinked, that it was removed while we opened it.
func openExisting(ctx context.Context, name, path string, s settings) (q *Queue, missing bool, err error) {
	f, err := shm.OpenFile(path)
	if errors.Is(err, shm.ErrNotRegular) {
		return nil, false, fmt.Errorf("mpq: open queue %s: %w: %v", name, ErrIncompatible, err)
	}
	if err != nil {
		return nil, errors.Is(err, fs.ErrNotExist), fmt.Errorf("mpq: open queue %s in %s: %w", name, s.dir, err)
	}
	h, err := attach(ctx, f, nil, s, path, nil)
	if errors.Is(err, errUnlinked) {
		return nil, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("mpq: open queue %s: %w", name, err)
	}
	return newQueue(h, s, name, path), false, nil
}

// create makes the queue file at path, reserved and initialized before it
// is linked into place, and attaches to it. It reports a race that made it
// fail.
func create(ctx context.Context, name, path string, s settings) (*Queue, race, error) {
	undo, err := shm.EnsureDir(s.dir, s.private)
	if err != nil {
		return nil, noRace, err
	}
	if err := checkNew(name, s); err != nil {
		undo()
		return nil, noRace, err
	}
	g := s.geometry
	g.Created = time.Now()
	// The lock file, the slot and the open lock that RemoveIf takes are
	// made and taken before the file is linked into place, so that a
	// failure to take them leaves no queue behind.
	var made created
	f, mem, err := shm.Create(path, s.mode, ring.MinSize(g.Capacity), func(f *os.File, mem []byte) error {
		locks := f
		if lockFiles {
			lf, id, err := createLockFile(f, path, s.mode)
			if err != nil {
				return err
			}
			defer lf.Close() // the table locks through its own reopening of it
			g.LockFile, g.LockID = true, id
			made.lockPath, locks = lockPath(path, id), lf
		}
		if err := ring.Init(mem, g); err != nil {
			return err
		}
		var err error
		if made.lt, err = liveness.Attach(locks, ring.MaxProcs, ring.SlotOffset); err != nil {
			return err
		}
		// Nobody else has this lock file yet: this never waits.
		made.unlock, err = made.lt.LockOpen(ctx, openLockOffset)
		return err
	})
	if err != nil {
		made.release()
		race := noRace
		switch {
		case errors.Is(err, fs.ErrExist):
			race = madeElsewhere // the directory is not ours to remove then
		case errors.Is(err, fs.ErrNotExist):
			race = dirGone
			undo()
		default:
			undo()
		}
		return nil, race, fmt.Errorf("mpq: create queue %s in %s: %w", name, s.dir, err)
	}
	if g.Durable {
		// The new name must survive a crash as the Puts synced into it do.
		if err := shm.SyncDir(s.dir); err != nil {
			// Nobody has attached: they wait for the open lock, and then
			// find the file gone, as after RemoveIf.
			shm.Remove(s.dir, queueFiles(name)...)
			made.release() // its lock file too, before undo removes the directory
			undo()
			shm.Unmap(mem)
			f.Close()
			return nil, noRace, fmt.Errorf("mpq: create queue %s in %s: flush the directory: %w", name, s.dir, err)
		}
	}
	made.lockPath = "" // linked: the queue's now, removed with it
	f = byPath(f, path)
	h, err := attach(ctx, f, mem, s, path, &made)
	if errors.Is(err, errUnlinked) {
		return nil, unlinked, err
	}
	if err != nil {
		return nil, noRace, fmt.Errorf("mpq: create queue %s: %w", name, err)
	}
	return newQueue(h, s, name, path), noRace, nil
}

// byPath returns a descriptor of the queue file f, just linked at path,
// opened by that path: one made without a name still shows none in
// /proc/self/fd, where OpenFile looks for the lock file of a descriptor
// handed to it (Queue.File). It returns f if the file at path is no
// longer f (removed meanwhile: its descriptor is of no use to others).
func byPath(f *os.File, path string) *os.File {
	if !lockFiles {
		return f
	}
	nf, err := shm.OpenFile(path)
	if err != nil {
		return f
	}
	if id := fileOf(f); id == (fileID{}) || fileOf(nf) != id {
		nf.Close()
		return f
	}
	f.Close()
	return nf
}

// New creates an anonymous queue, which has no name and is reachable only
// through its file: hand q.File() to a child process (for example in
// exec.Cmd.ExtraFiles) and open it there with [OpenFile]. On Linux it is a
// memfd; it disappears when the last process holding it exits.
func New(opts *Options) (*Queue, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	h, err := newAnonymous(s)
	if err != nil {
		return nil, err
	}
	return newQueue(h, s, "", ""), nil
}

// newAnonymous makes an anonymous ring and attaches to it.
func newAnonymous(s settings) (*handle, error) {
	if s.geometry.Durable {
		return nil, fmt.Errorf("%w: an anonymous queue cannot be Durable: it has no file to survive in", ErrInvalidOptions)
	}
	g := s.geometry
	g.Created = time.Now()
	f, mem, err := shm.Anonymous(s.label, ring.MinSize(g.Capacity), func(mem []byte) error { return ring.Init(mem, g) })
	if err != nil {
		return nil, err
	}
	h, err := attach(context.Background(), f, mem, s, "", nil)
	if err != nil {
		return nil, fmt.Errorf("mpq: new queue: %w", err)
	}
	return h, nil
}

// OpenFile opens the queue whose file is f, typically a descriptor inherited
// from the process that created an anonymous queue with [New]. The Queue
// uses its own duplicate of f; on Linux the caller may close f (see the
// package documentation for other systems). f may also be a descriptor of
// a named queue (its [Queue.File]): OpenFile then finds the queue's lock
// file beside it, so its directory must be reachable by path from this
// process (not so in another mount namespace or a chroot that lacks it:
// share the directory, not the file alone), and it refuses, with an error
// wrapping fs.ErrNotExist, a queue that has been removed meanwhile. opts may be nil; of its fields
// only Spin, Lease and Sync apply (the others are still checked).
func OpenFile(f *os.File, opts *Options) (*Queue, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	h, err := openFile(f, s)
	if err != nil {
		return nil, err
	}
	return newQueue(h, s, "", ""), nil
}

// openFile attaches to the ring whose file is f, through a duplicate of f.
func openFile(f *os.File, s settings) (*handle, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, shm.Explain("duplicate queue descriptor", err)
	}
	h, err := attach(context.Background(), os.NewFile(uintptr(fd), f.Name()), nil, s, "", nil)
	if err != nil {
		return nil, fmt.Errorf("mpq: open queue file %s: %w", f.Name(), err)
	}
	return h, nil
}

// Name returns the queue's name; "" for an anonymous queue.
func (q *Queue) Name() string { return q.name }

// String describes the queue for logs.
func (q *Queue) String() string {
	if q.name == "" {
		return "mpq.Queue(anonymous)"
	}
	return fmt.Sprintf("mpq.Queue(%s)", q.name)
}

// Len returns the number of messages waiting in the queue. It is a read of
// two counters in the queue header, exact when no Put or Get is in progress.
func (q *Queue) Len() int {
	if !q.enter() {
		return 0
	}
	defer q.leave()
	return q.r.Len()
}

// Seal marks the queue as complete: every later Put, in any process, fails
// with ErrSealed, while Get keeps returning the messages already in the
// queue and then io.EOF. Blocked Puts and Gets wake up. Sealing is permanent
// for the queue file and sealing twice is not an error. Seal waits for a Put
// that another process is in the middle of (taking over if it died).
func (q *Queue) Seal() error {
	return q.r.Seal()
}

// File returns a new descriptor of the queue file, to hand to a child
// process that opens it with [OpenFile]. It is close-on-exec, as Go's
// descriptors are; exec.Cmd.ExtraFiles passes it all the same. The caller
// closes it.
func (q *Queue) File() (*os.File, error) { return q.handle.File() }

// Close releases this handle: it waits for the handle's running Puts and
// Gets to finish, wakes its blocked ones (which return ErrClosed), unmaps
// the queue and detaches from it. The queue and its messages stay. Close is
// idempotent: later calls return ErrClosed, as do all other methods.
func (q *Queue) Close() error {
	return q.close(func() {
		if q.syncer != nil {
			q.syncer.stop() // flushes what this handle put since its last flush
		}
		q.deadMu.Lock()
		if q.dead != nil {
			q.dead.Close()
		}
		q.deadMu.Unlock()
	})
}

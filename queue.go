package mpq

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/futex"
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
	name string
	path string
	f    *os.File // the queue file: mapped, and handed to children by File
	lt   *liveness.Table
	mem  []byte
	r    *ring.Ring
	spin time.Duration
	dir  string // where named queues of this handle's options live: for the dead-letter queue

	lease   time.Duration
	syncPut bool       // durable, SyncEveryPut
	syncer  *syncer    // durable, SyncEvery: nil otherwise
	deadMu  sync.Mutex // guards dead
	dead    *Queue     // the dead-letter queue, once opened

	wmu      sync.Mutex // guards the fields below
	closing  bool
	unmapped bool
	active   int    // goroutines inside a blocking wait
	waiting  [2]int // goroutines asleep for data, for space

	sleepers [2]sleepers // for data, for space: see sleep
	closed   chan struct{}
}

// Open opens the named queue, creating it if it does not exist (unless
// opts.NoCreate is set). opts may be nil.
func Open(name string, opts *Options) (*Queue, error) {
	return open(name, opts, true)
}

// Create creates the named queue and opens it. It fails with an error
// wrapping fs.ErrExist if the queue exists.
func Create(name string, opts *Options) (*Queue, error) {
	return open(name, opts, false)
}

// open opens or creates the named queue; mayExist is false for Create.
func open(name string, opts *Options, mayExist bool) (*Queue, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	if s.noCreate && !mayExist {
		return nil, fmt.Errorf("%w: Create with NoCreate set", ErrInvalidOptions)
	}
	mayCreate := !s.noCreate
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return nil, err
	}
	if s.private {
		if err := shm.CheckPrivate(s.dir); err != nil {
			return nil, err
		}
	}
	for vanished := 0; ; {
		if mayExist {
			f, err := shm.OpenFile(path)
			if err == nil {
				q, err := attach(f, nil, s, path, nil)
				if errors.Is(err, errUnlinked) {
					continue // removed while we opened it: look again
				}
				if err != nil {
					return nil, fmt.Errorf("mpq: open queue %s: %w", name, err)
				}
				q.name, q.path = name, path
				return q, nil
			}
			if errors.Is(err, shm.ErrNotRegular) {
				return nil, fmt.Errorf("mpq: open queue %s: %w: %v", name, ErrIncompatible, err)
			}
			if !errors.Is(err, fs.ErrNotExist) || !mayCreate {
				return nil, fmt.Errorf("mpq: open queue %s in %s: %w", name, s.dir, err)
			}
		}
		undo, err := shm.EnsureDir(s.dir, s.private)
		if err != nil {
			return nil, err
		}
		if err := checkNew(name, s); err != nil {
			undo()
			return nil, err
		}
		g := s.geometry
		g.Created = time.Now()
		// The slot, and the open lock that RemoveIf takes, are taken
		// before the file is linked into place, so that a failure to take
		// them leaves no queue behind.
		var made created
		f, mem, err := shm.Create(path, s.mode, ring.MinSize(g.Capacity), func(f *os.File, mem []byte) error {
			if err := ring.Init(mem, g); err != nil {
				return err
			}
			var err error
			if made.lt, err = liveness.Attach(f, ring.MaxProcs, ring.SlotOffset); err != nil {
				return err
			}
			made.unlock, err = made.lt.LockOpen(openLockOffset)
			return err
		})
		if err != nil {
			made.release()
		}
		if errors.Is(err, fs.ErrExist) && mayExist {
			continue // created by another process meanwhile: open it
		}
		if err != nil {
			undo()
			if errors.Is(err, fs.ErrNotExist) && vanished < 100 {
				vanished++
				continue // the directory was removed meanwhile (by a failed call that made it)
			}
			if errors.Is(err, ErrNoSpace) && mayExist && exists(path) {
				continue // another process made it first, taking the room: open it
			}
			return nil, fmt.Errorf("mpq: create queue %s in %s: %w", name, s.dir, err)
		}
		if g.Durable {
			// The new name must survive a crash as the Puts synced into it do.
			if err := shm.SyncDir(s.dir); err != nil {
				// Nobody has attached: they wait for the open lock, and
				// then find the file gone, as after RemoveIf.
				os.Remove(path)
				undo()
				made.release()
				shm.Unmap(mem)
				f.Close()
				return nil, fmt.Errorf("mpq: create queue %s in %s: flush the directory: %w", name, s.dir, err)
			}
		}
		q, err := attach(f, mem, s, path, &made)
		if errors.Is(err, errUnlinked) {
			continue // removed as soon as it was made: make it again
		}
		if err != nil {
			return nil, fmt.Errorf("mpq: create queue %s: %w", name, err)
		}
		q.name, q.path = name, path
		return q, nil
	}
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
	if s.geometry.Durable {
		return nil, fmt.Errorf("%w: an anonymous queue cannot be Durable: it has no file to survive in", ErrInvalidOptions)
	}
	g := s.geometry
	g.Created = time.Now()
	f, mem, err := shm.Anonymous(ring.MinSize(g.Capacity), func(mem []byte) error { return ring.Init(mem, g) })
	if err != nil {
		return nil, err
	}
	q, err := attach(f, mem, s, "", nil)
	if err != nil {
		return nil, fmt.Errorf("mpq: new queue: %w", err)
	}
	return q, nil
}

// OpenFile opens the queue whose file is f, typically a descriptor inherited
// from the process that created an anonymous queue with [New]. The Queue
// uses its own duplicate of f; on Linux the caller may close f (see the
// package documentation for other systems). opts may be nil; of its fields
// only Spin, Lease and Sync apply (the others are still checked).
func OpenFile(f *os.File, opts *Options) (*Queue, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, shm.Explain("duplicate queue descriptor", err)
	}
	q, err := attach(os.NewFile(uintptr(fd), f.Name()), nil, s, "", nil)
	if err != nil {
		return nil, fmt.Errorf("mpq: open queue file %s: %w", f.Name(), err)
	}
	return q, nil
}

// Remove deletes the named queue. Processes that have it open keep using it
// until they close it; a later Open creates a new queue. Removing a missing
// queue returns an error wrapping fs.ErrNotExist.
func Remove(name string, opts *Options) error {
	s, err := opts.settings()
	if err != nil {
		return err
	}
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	return nil
}

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

// attach maps f (unless mem is already its mapping), validates it and takes a
// process slot. It takes ownership of f. A durable queue is recovered first
// if no other process has it open.
// errUnlinked means the file attached to is no longer the named queue's:
// it was removed (or replaced) while it was being opened.
var errUnlinked = errors.New("mpq: queue file removed while opening it")

// attach attaches to the queue file f, mapped at mem if not nil. For a
// named queue, path is its file's path: attaching then takes the open
// lock, which RemoveIf holds while it removes an idle queue, and fails
// with errUnlinked if f is no longer at path.
//
// made is nil for a file that exists already, or what this process took
// in the file it has just created before linking it into place: a new file
// has nothing to recover.
func attach(f *os.File, mem []byte, s settings, path string, made *created) (q *Queue, err error) {
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
			q, err = nil, fmt.Errorf("%w: its memory faulted at offset %d while it was opened: the file was truncated, or a page of it removed, meanwhile", ErrCorrupt, off)
		}
	}(debug.SetPanicOnFault(true))
	size, err := shm.Size(f)
	if err != nil || size < ring.PageSize {
		return nil, fmt.Errorf("%w: %s is %s, not a queue file: open a queue by name, or pass the descriptor of one (Queue.File) to OpenFile", ErrIncompatible, where(f, path), shm.Describe(f))
	}
	if mem == nil {
		if size > ring.MinSize(ring.MaxCapacity) {
			return nil, fmt.Errorf("%w: file of %d bytes is larger than any queue", ErrCorrupt, size)
		}
		// A file made sparse (copied, made by an older mpq, a hole punched
		// into it) gets its storage now, or fails here with ErrNoSpace,
		// rather than a Put later with SIGBUS.
		if err := shm.Back(f, size, dirOf(f, path)); err != nil {
			return nil, err
		}
		if mem, err = shm.Map(f, size); err != nil {
			return nil, err
		}
	}
	g, err := ring.ReadHeader(mem)
	if err != nil {
		return nil, err
	}
	switch {
	case lt != nil:
		if !linked(f, path) {
			err = errUnlinked
		}
	case g.Durable:
		var alone bool
		lt, alone, release, err = liveness.AttachFirst(f, ring.MaxProcs, ring.SlotOffset, openLockOffset)
		if err != nil {
			return nil, err
		}
		if path != "" && !linked(f, path) {
			err = errUnlinked
		} else if alone {
			err = recoverFile(f, &mem, &size, g, dirOf(f, path))
		}
	case path != "":
		// Only the open lock: whether we are alone matters to recovery,
		// which a queue in memory does not need.
		if release, err = liveness.LockOpen(f, openLockOffset); err != nil {
			return nil, err
		}
		if lt, err = liveness.Attach(f, ring.MaxProcs, ring.SlotOffset); err == nil && !linked(f, path) {
			err = errUnlinked
		}
	default:
		lt, err = liveness.Attach(f, ring.MaxProcs, ring.SlotOffset)
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
	q = &Queue{f: f, lt: lt, mem: mem, r: r, spin: s.spin, closed: make(chan struct{}),
		dir: s.dir, lease: s.lease}
	if g.Durable {
		switch {
		case s.sync == SyncNever:
		case s.sync > 0:
			q.syncer = newSyncer(q, time.Duration(s.sync))
		default:
			q.syncPut = true
		}
	}
	r.SweepWaiters()
	return q, nil
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

// openLockOffset is the byte of a queue file that processes lock while
// they attach to a named queue: so that exactly one recovers a durable
// queue after a crash, and so that RemoveIf sees every process that
// attaches to a queue before it removes it.
const openLockOffset = 1

// created is what the process that creates a queue file takes in it before
// it links the file into place: its slot, and the open lock.
type created struct {
	lt     *liveness.Table
	unlock func()
}

// release lets go of what was taken, for a creation that failed.
func (c *created) release() {
	if c.unlock != nil {
		c.unlock()
	}
	if c.lt != nil {
		c.lt.Close()
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

// Name returns the queue's name; "" for an anonymous queue.
func (q *Queue) Name() string { return q.name }

// String describes the queue for logs.
func (q *Queue) String() string {
	if q.name == "" {
		return "mpq.Queue(anonymous)"
	}
	return fmt.Sprintf("mpq.Queue(%s)", q.name)
}

// File returns a new descriptor of the queue file, to hand to a child
// process that opens it with [OpenFile]. It is close-on-exec, as Go's
// descriptors are; exec.Cmd.ExtraFiles passes it all the same. The caller
// closes it.
func (q *Queue) File() (*os.File, error) {
	if !q.enter() { // Close closes q.f only once no one is inside
		return nil, ErrClosed
	}
	defer q.leave()
	fd, err := unix.FcntlInt(q.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, shm.Explain("duplicate queue descriptor", err)
	}
	return os.NewFile(uintptr(fd), q.f.Name()), nil
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

// enter registers a goroutine that reads the mapping outside the ring's
// locks, so that Close does not unmap it meanwhile. It reports false once the
// handle is closing.
func (q *Queue) enter() bool {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if q.closing {
		return false
	}
	q.active++
	return true
}

func (q *Queue) leave() {
	q.wmu.Lock()
	q.active--
	q.wmu.Unlock()
}

// Seal marks the queue as complete: every later Put, in any process, fails
// with ErrSealed, while Get keeps returning the messages already in the
// queue and then io.EOF. Blocked Puts and Gets wake up. Sealing is permanent
// for the queue file and sealing twice is not an error. Seal waits for a Put
// that another process is in the middle of (taking over if it died).
func (q *Queue) Seal() error {
	return q.r.Seal()
}

// Close releases this handle: it waits for the handle's running Puts and
// Gets to finish, wakes its blocked ones (which return ErrClosed), unmaps
// the queue and detaches from it. The queue and its messages stay. Close is
// idempotent: later calls return ErrClosed, as do all other methods.
func (q *Queue) Close() error {
	q.wmu.Lock()
	if q.closing {
		q.wmu.Unlock()
		return ErrClosed
	}
	q.closing = true
	close(q.closed)
	q.wmu.Unlock()

	if q.syncer != nil {
		q.syncer.stop() // flushes what this handle put since its last flush
	}
	q.deadMu.Lock()
	if q.dead != nil {
		q.dead.Close()
	}
	q.deadMu.Unlock()

	q.r.Close(nil) // no put or get of ours runs past this point
	// Our sleepers wake (as do other processes' sleepers, who go back to
	// sleep), see the ring closed and leave.
	q.wakeLocal(forData)
	q.wakeLocal(forSpace)
	for {
		q.wmu.Lock()
		if q.active == 0 {
			q.unmapped = true
			shm.Unmap(q.mem)
			q.wmu.Unlock()
			break
		}
		q.wmu.Unlock()
		time.Sleep(100 * time.Microsecond)
	}
	err := q.lt.Close()
	if e := q.f.Close(); err == nil {
		err = e
	}
	return err
}

// wakeLocal wakes the sleepers on the data (or space) futex word, so that
// ours notice a cancelled context or a closing handle. Other processes'
// sleepers on that word wake too and go back to sleep.
func (q *Queue) wakeLocal(space bool) {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if q.unmapped {
		return
	}
	defer q.r.Guard(nil, debug.SetPanicOnFault(true))
	w := q.r.DataSeq()
	if space {
		w = q.r.SpaceSeq()
	}
	atomic.AddUint32(w, 1)
	futex.Wake(w, 1<<30)
}

package mpq

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/liveness"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

// A handle is this process's attachment to one ring in shared memory: the
// file, its mapping, its process slot, and the goroutines of this process
// using it. [Queue] and [Conn] are both built on handles: a Queue is one
// handle and what a queue adds (a name, leases, durability, dead letters);
// a Conn has one handle for each direction. attach makes a handle; block
// (wait.go) waits on one; close releases it.
type handle struct {
	f    *os.File // the ring's file: mapped, and handed to children by file
	lt   *liveness.Table
	mem  []byte
	r    *ring.Ring
	spin time.Duration

	wmu      sync.Mutex // guards the fields below
	idle     sync.Cond  // on wmu: signalled when active drops to 0 while closing
	closing  bool
	unmapped bool
	active   int    // goroutines reading the mapping outside the ring's locks
	waiting  [2]int // goroutines asleep for data, for space

	sleepers [2]sleepers // for data, for space: see sleep
	closed   chan struct{}
	file     fileID // of f, in the register of handles here
}

// newHandle makes the handle of a ring attached to in this process.
func newHandle(f *os.File, lt *liveness.Table, mem []byte, r *ring.Ring, spin time.Duration) *handle {
	h := &handle{f: f, lt: lt, mem: mem, r: r, spin: spin, closed: make(chan struct{})}
	h.idle.L = &h.wmu
	h.file = fileOf(f)
	here.add(h.file, 1)
	return h
}

// enter registers a goroutine that reads the mapping outside the ring's
// locks, so that close does not unmap it meanwhile. It reports false once
// the handle is closing.
func (h *handle) enter() bool {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.closing {
		return false
	}
	h.active++
	return true
}

// leave ends what enter began.
func (h *handle) leave() {
	h.wmu.Lock()
	h.active--
	if h.active == 0 && h.closing {
		h.idle.Broadcast()
	}
	h.wmu.Unlock()
}

// File returns a new close-on-exec descriptor of the ring's file.
func (h *handle) File() (*os.File, error) {
	if !h.enter() { // close closes h.f only once no one is inside
		return nil, ErrClosed
	}
	defer h.leave()
	fd, err := unix.FcntlInt(h.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, shm.Explain("duplicate queue descriptor", err)
	}
	return os.NewFile(uintptr(fd), h.f.Name()), nil
}

// close releases the handle: it runs first (if not nil) once the handle is
// closing, closes the ring for this process, wakes the handle's sleepers
// (which return ErrClosed), waits until no goroutine is inside, unmaps the
// ring and gives back the process slot. A second close returns ErrClosed.
func (h *handle) close(first func()) error {
	h.wmu.Lock()
	if h.closing {
		h.wmu.Unlock()
		return ErrClosed
	}
	h.closing = true
	close(h.closed)
	h.wmu.Unlock()

	if first != nil {
		first()
	}
	h.r.Close(nil) // no put or get of ours runs past this point
	// Our sleepers wake (as do other processes' sleepers, who go back to
	// sleep), see the ring closed and leave.
	h.wakeLocal(forData)
	h.wakeLocal(forSpace)
	h.wmu.Lock()
	for h.active > 0 {
		h.idle.Wait()
	}
	h.unmapped = true
	shm.Unmap(h.mem)
	h.wmu.Unlock()
	here.add(h.file, -1)
	err := h.lt.Close()
	if e := h.f.Close(); err == nil {
		err = e
	}
	return err
}

// Close releases a handle that nothing else is built on: a ring of a Conn.
func (h *handle) Close() error { return h.close(nil) }

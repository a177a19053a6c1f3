package ring

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"unsafe"
)

// Faults. Touching a page of a shared mapping that its file no longer has
// (another process truncated the file, or punched a hole into it on a full
// tmpfs) raises SIGBUS, which kills a Go process unless the goroutine has
// asked, with debug.SetPanicOnFault, for a panic instead. Every exported
// method of Ring that touches the memory asks for it, and defers guard,
// which turns a fault on the memory into an error: the Ring then refuses
// further use, as a closed one does, and lets go of the shared lock it
// held, so that other processes carry on (they recover what it left as
// they do for a process that died there).
//
// The usage is one line after the method's local mutexes are taken:
//
//	defer r.guard(&err, debug.SetPanicOnFault(true), r.w.prodLock, nil)

// faultError is what every call on a Ring returns once its memory faulted.
type faultError struct{ off uintptr }

func (e *faultError) Error() string {
	return fmt.Sprintf("%v: its memory faulted at offset %d: the queue file was truncated, or a page of it removed, by another process; "+
		"this handle refuses further use: close it, and remove or recreate the queue", ErrCorrupt, e.off)
}

func (e *faultError) Is(target error) bool { return target == ErrCorrupt }

// guard is deferred by the methods that touch the memory: see above. old
// is the goroutine's SetPanicOnFault setting before the method, restored
// here. lock1 and lock2, when not nil, are the shared lock words the method
// may hold (its local mutex for them is still held while guard runs, so no
// other goroutine of this process holds them); errp, if not nil, receives
// the fault's error.
func (r *Ring) guard(errp *error, old bool, lock1, lock2 *uint32) {
	debug.SetPanicOnFault(old)
	v := recover()
	if v == nil {
		return
	}
	err := r.faulted(v)
	r.abandon(lock1)
	r.abandon(lock2)
	if errp != nil {
		*errp = err
	}
}

// Guard is guard for code outside this package that touches the memory
// through the Ring's lock-free methods (HasData, Waiting, the futex words):
//
//	defer r.Guard(&err, debug.SetPanicOnFault(true))
//
// errp may be nil when the caller has no error to return.
func (r *Ring) Guard(errp *error, old bool) {
	debug.SetPanicOnFault(old)
	if v := recover(); v != nil {
		err := r.faulted(v)
		if errp != nil {
			*errp = err
		}
	}
}

// guardPoll is guard for the polls that say whether to try an operation:
// after a fault they say yes, and the operation returns the fault's error.
func (r *Ring) guardPoll(ok *bool, old bool) {
	debug.SetPanicOnFault(old)
	if v := recover(); v != nil {
		r.faulted(v)
		*ok = true
	}
}

// faulted records the fault that v, a recovered panic, reports, and returns
// the error every later call returns. A panic that is not a fault on the
// memory goes on.
func (r *Ring) faulted(v any) error {
	off, ok := FaultOffset(v, r.mem)
	if !ok {
		panic(v)
	}
	e := &faultError{off: off}
	r.fault.CompareAndSwap(nil, e)
	return r.fault.Load()
}

// FaultOffset reports whether v, a recovered panic, is a memory fault that
// SetPanicOnFault raised inside mem, and at which offset of it.
func FaultOffset(v any, mem []byte) (uintptr, bool) {
	f, ok := v.(interface {
		runtime.Error
		Addr() uintptr
	})
	if !ok || len(mem) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	a := f.Addr()
	if a < base || a-base >= uintptr(len(mem)) {
		return 0, false
	}
	return a - base, true
}

// abandon lets go of the shared lock word w if this process holds it after
// a fault, flagging for the next holder the recount (and, for the consumer
// lock, the repair) that taking over a dead holder's lock runs. The words
// may fault too: then every process that touches them finds the queue
// faulted, and there is nothing to release.
func (r *Ring) abandon(w *uint32) {
	if w == nil {
		return
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { recover() }()
	if atomic.LoadUint32(w) != r.self {
		return
	}
	atomic.StoreUint32(r.w.recount, 1)
	if w == r.w.consLock {
		atomic.StoreUint32(r.w.repair, 1)
	}
	atomic.CompareAndSwapUint32(w, r.self, 0)
}

// usable returns ErrClosed after Close, the fault's error after a fault, and
// nil otherwise.
func (r *Ring) usable() error {
	if r.closed.Load() {
		return ErrClosed
	}
	if e := r.fault.Load(); e != nil {
		return e
	}
	return nil
}

// Faulted returns the error of the fault that made the Ring unusable, or nil.
func (r *Ring) Faulted() error {
	if e := r.fault.Load(); e != nil {
		return e
	}
	return nil
}

package ring

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
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
// Under the race detector a truncation that lands between the detector's
// check of an atomic's address and the atomic itself faults where the
// runtime cannot unwind, and the process dies: only -race builds.
//
// The usage is one line after the method's local mutexes are taken:
//
//	defer r.guard(&err, debug.SetPanicOnFault(true), r.w.prodLock, nil)
//
// or, for the methods on the hot path, which hold one local mutex, one
// deferred call that also unlocks it (a second defer costs a few
// nanoseconds a message):
//
//	r.pmu.Lock()
//	defer r.unlockGuard(&r.pmu, &err, debug.SetPanicOnFault(true), r.w.prodLock)

// CannotFault tells the Ring that its memory cannot fault: a memfd sealed
// against shrinking, whose pages come from a mount without a size limit.
// (A page punched out of it is allocated again when touched; out of memory
// that wakes the OOM killer, as any allocation does, never SIGBUS.)
// The methods on the hot path then skip the guard and its few nanoseconds.
// Call it before the Ring is used.
func (r *Ring) CannotFault() { r.cannotFault = true }

// MayFault reports whether the memory may fault: whether a caller outside
// the package needs Guard.
func (r *Ring) MayFault() bool { return !r.cannotFault }

// faultError is what every call on a Ring returns once its memory faulted.
type faultError struct{ off uintptr }

func (e *faultError) Error() string {
	return fmt.Sprintf("%v: its memory faulted at offset %d: the queue file was truncated, or a page of it removed, by another process "+
		"(or its disk could not read it back); this handle refuses further use: close it, and remove or recreate the queue", ErrCorrupt, e.off)
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

// unlockGuard is guard for a method that holds the local mutex mu for the
// shared lock word lock, and then unlocks mu.
func (r *Ring) unlockGuard(mu *sync.Mutex, errp *error, old bool, lock *uint32) {
	debug.SetPanicOnFault(old)
	if v := recover(); v != nil {
		err, ok := r.faultOf(v)
		if !ok {
			mu.Unlock()
			panic(v)
		}
		r.abandon(lock)
		*errp = err
	}
	mu.Unlock()
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
	err, ok := r.faultOf(v)
	if !ok {
		panic(v)
	}
	return err
}

// faultOf is faulted for a caller that re-panics itself: ok is false for a
// panic that is not a fault on the memory, and nothing is recorded then.
func (r *Ring) faultOf(v any) (_ error, ok bool) {
	off, ok := FaultOffset(v, r.mem)
	if !ok {
		return nil, false
	}
	r.fault.CompareAndSwap(nil, &faultError{off: off})
	return r.fault.Load(), true
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
		atomic.OrUint32(r.w.repair, repairNeeded)
	}
	atomic.CompareAndSwapUint32(w, r.self, 0)
}

// usable returns ErrClosed after Close, the fault's error after a fault, and
// nil otherwise.
func (r *Ring) usable() error {
	if r.closed.Load() {
		return ErrClosed
	}
	return r.Faulted()
}

// Faulted returns the error of the fault that made the Ring unusable, or nil.
func (r *Ring) Faulted() error {
	if e := r.fault.Load(); e != nil {
		return e
	}
	return nil
}

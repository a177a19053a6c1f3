package ring

import (
	"errors"
	"io"
	"runtime/debug"
	"sync/atomic"
	"time"
)

var (
	// ErrBusy means a try-operation found the lock held by a live process
	// for longer than it may wait.
	ErrBusy = errors.New("mpq: queue lock busy")
	// ErrCanceled means the done channel of a blocking operation closed.
	ErrCanceled = errors.New("mpq: wait canceled")
)

// Lock spinning: a few hundred loads, then rounds of a liveness check of the
// holder followed by a yield (the first rounds) or a short sleep. Critical
// sections are a copy and a few stores long, so a holder that stays longer
// was descheduled, stopped or killed.
const (
	spinLoads  = 256
	spinYields = 4
	tryRounds  = 14 // rounds a try-operation waits on a live holder (~1 ms)
	lockSleep  = 100 * time.Microsecond
)

func (r *Ring) lock(w *uint32, try bool, done <-chan struct{}) error {
	if atomic.CompareAndSwapUint32(w, 0, r.self) {
		return nil
	}
	return r.lockSlow(w, try, done)
}

func (r *Ring) lockSlow(w *uint32, try bool, done <-chan struct{}) error {
	rounds := 0
	for i := 0; ; i++ {
		v := atomic.LoadUint32(w)
		if v == 0 {
			if atomic.CompareAndSwapUint32(w, 0, r.self) {
				return nil
			}
			continue
		}
		// The caller holds this process's local mutex for the lock, so no
		// goroutine of ours can be the holder.
		if v == r.self || refGen(v) == 0 {
			return corrupt("lock word holds %#x", v)
		}
		if i < spinLoads {
			continue
		}
		// Test the holder before every yield or sleep: on a busy machine
		// one yield can last a whole time slice, and a dead holder must be
		// found within milliseconds whatever the load.
		if !r.alive(v) {
			if atomic.CompareAndSwapUint32(w, v, r.self) {
				atomic.StoreUint32(r.w.recount, 1)
				if w == r.w.consLock {
					atomic.StoreUint32(r.w.repair, 1)
				}
				atomic.AddUint64(r.w.recovered, 1)
				return nil
			}
			continue
		}
		if try && rounds >= tryRounds {
			return ErrBusy
		}
		if r.closing.Load() {
			return ErrClosed
		}
		if done != nil {
			select {
			case <-done:
				return ErrCanceled
			default:
			}
		}
		if rounds < spinYields {
			r.env.Yield()
		} else {
			time.Sleep(lockSleep)
		}
		rounds++
	}
}

// Points where TestHook is called.
const (
	HookPut     = "put"     // a producer holds the lock and has copied half the message
	HookGet     = "get"     // a consumer holds the lock and is about to copy a message out
	HookReceive = "receive" // a consumer holds the lock, has filled a deliveries entry, not yet marked the record
	HookTaken   = "taken"   // a consumer holds the lock, has marked the record taken, not yet moved head
	HookAck     = "ack"     // a consumer holds the lock, has marked the record done, not yet freed the entry
)

// TestHook, if set, is called at the points named above. Tests use it to
// stop a process at an exact point and kill it there. It must be set before
// any queue is used.
var TestHook func(point string)

func (r *Ring) unlock(w *uint32) { atomic.StoreUint32(w, 0) }

// Put writes msg, or, if msgs is not nil, as many of msgs as fit, in order.
// It returns how many messages it wrote. With nothing written the error is
// ErrFull (no room), ErrSealed, ErrTooLarge, ErrClosed, ErrBusy, ErrCanceled
// or ErrCorrupt.
func (r *Ring) Put(msg []byte, msgs [][]byte, try bool, done <-chan struct{}) (n int, err error) {
	r.pmu.Lock()
	if r.cannotFault {
		defer r.pmu.Unlock()
	} else {
		defer r.unlockGuard(&r.pmu, &err, debug.SetPanicOnFault(true), r.w.prodLock)
	}
	return r.put(msg, msgs, nil, try, done)
}

// PutTrailerExclusive writes one record holding msg followed by trailer: a
// framing layer above the ring adds its marks this way without copying msg
// first. It does not take the ring's local mutex: the caller guarantees that
// no other goroutine puts through, seals or closes this Ring meanwhile.
func (r *Ring) PutTrailerExclusive(msg, trailer []byte, try bool, done <-chan struct{}) (err error) {
	if !r.cannotFault {
		defer r.guard(&err, debug.SetPanicOnFault(true), r.w.prodLock, nil)
	}
	_, err = r.put(msg, nil, trailer, try, done)
	return err
}

// put runs with the producers of this Ring excluded.
func (r *Ring) put(msg []byte, msgs [][]byte, trailer []byte, try bool, done <-chan struct{}) (int, error) {
	if msgs == nil {
		if uint64(len(msg)+len(trailer)) > r.maxM {
			return 0, ErrTooLarge
		}
	} else {
		for _, m := range msgs {
			if uint64(len(m)) > r.maxM {
				return 0, ErrTooLarge
			}
		}
	}
	if err := r.usable(); err != nil {
		return 0, err
	}
	r.setRole(RoleProducer)
	if err := r.lock(r.w.prodLock, try, done); err != nil {
		return 0, err
	}
	n, err := r.putLocked(msg, msgs, trailer)
	r.unlock(r.w.prodLock)
	if n > 0 {
		r.wake(false)
	}
	return n, err
}

func (r *Ring) putLocked(msg []byte, msgs [][]byte, trailer []byte) (int, error) {
	if atomic.LoadUint32(r.w.sealed) != 0 {
		return 0, ErrSealed
	}
	t := atomic.LoadUint64(r.w.tail)
	// tail comes from shared memory: check it against free before writing
	// anything at its index.
	if t < r.freeCache || t-r.freeCache > r.cap || t&(r.algn-1) != 0 {
		free := r.reclaimed()
		if err := r.checkSpan("free/tail", free, t); err != nil {
			return 0, err
		}
		r.freeCache = free
	}
	if msgs == nil {
		t, err := r.write(t, msg, trailer)
		if err != nil {
			return 0, err
		}
		r.commitPut(t, 1)
		return 1, nil
	}
	n, pending, last := 0, 0, t
	var err error
	for _, m := range msgs {
		var t2 uint64
		if t2, err = r.write(t, m, nil); err != nil {
			break
		}
		t = t2
		n++
		pending++
		// Publish large batches in parts, so that consumers start on them
		// while the rest is copied.
		if t-last >= r.cap/8 {
			r.commitPut(t, pending)
			r.wake(false)
			pending, last = 0, t
		}
	}
	if pending > 0 {
		r.commitPut(t, pending)
	}
	if n > 0 {
		return n, nil
	}
	return 0, err
}

// commitPut publishes n records ending at t.
func (r *Ring) commitPut(t uint64, n int) {
	atomic.StoreUint64(r.w.puts, atomic.LoadUint64(r.w.puts)+uint64(n))
	atomic.StoreUint64(r.w.tail, t) // commit
}

// write copies msg and trailer into the record at position t and returns the
// position after it, or ErrFull.
func (r *Ring) write(t uint64, msg, trailer []byte) (uint64, error) {
	n := len(msg) + len(trailer)
	size := r.recordSize(n)
	idx := t & r.mask
	need, pad := size, uint64(0)
	if idx+size > r.cap {
		pad = r.cap - idx
		need += pad
	}
	if t+need-r.freeCache > r.cap {
		free := r.reclaimed()
		if err := r.checkSpan("free/tail", free, t); err != nil {
			return t, err
		}
		r.freeCache = free
		if t+need-free > r.cap {
			return t, ErrFull
		}
	}
	if pad > 0 {
		h := makeHeader(pad-r.hdr, statePad)
		if r.hdr == DurableHeaderBytes {
			storeCRC(r.data, idx, recordCRC(t, h, nil, nil))
		}
		storeHeader(r.data, idx, h)
		t += pad
		idx = 0
	}
	if TestHook != nil && len(msg) > 1 {
		copy(r.data[idx+r.hdr:], msg[:len(msg)/2])
		TestHook(HookPut)
	}
	copy(r.data[idx+r.hdr:], msg)
	if len(trailer) > 0 {
		copy(r.data[idx+r.hdr+uint64(len(msg)):], trailer)
	}
	h := makeHeader(uint64(n), stateReady)
	if r.hdr == DurableHeaderBytes {
		storeCRC(r.data, idx, recordCRC(t, h, msg, trailer))
	}
	storeHeader(r.data, idx, h)
	return t + size, nil
}

// Get appends the payloads of up to max messages to dst; if ends is not nil
// it appends the end offset in dst of each one. It returns the number of
// messages taken. With none taken the error is ErrEmpty, io.EOF (sealed and
// drained), ErrClosed, ErrBusy, ErrCanceled or ErrCorrupt. maxBytes, if
// positive, stops the batch before a message that would make dst longer
// (unless dst is empty: a message always fits an empty dst). Messages given
// back by Nack or a dead consumer come first.
func (r *Ring) Get(dst []byte, ends *[]int, max, maxBytes int, try bool, done <-chan struct{}) ([]byte, int, error) {
	had := 0
	if ends != nil {
		had = len(*ends)
	}
	out, n, err := r.get(dst, ends, max, maxBytes, try, done)
	if n == 0 && err != nil {
		// Nothing taken: dst and ends as they came, even after a fault
		// cut a copy short (which leaves the results zero).
		if ends != nil {
			*ends = (*ends)[:had]
		}
		return dst, 0, err
	}
	return out, n, err
}

func (r *Ring) get(dst []byte, ends *[]int, max, maxBytes int, try bool, done <-chan struct{}) (_ []byte, _ int, err error) {
	r.cmu.Lock()
	if r.cannotFault {
		defer r.cmu.Unlock()
	} else {
		defer r.unlockGuard(&r.cmu, &err, debug.SetPanicOnFault(true), r.w.consLock)
	}
	if err := r.lockCons(true, try, done); err != nil {
		return dst, 0, err
	}
	if atomic.LoadUint32(r.w.inFlight) != 0 {
		r.sweep(time.Now().UnixNano(), false)
	}
	n := 0
	if atomic.LoadUint32(r.w.returned) != 0 {
		dst, n, err = r.getReturned(dst, ends, max, maxBytes)
		if err != nil {
			r.unlock(r.w.consLock)
			return dst, 0, err
		}
	}
	h0 := atomic.LoadUint64(r.w.head)
	// With no delivery held below head, taking a record frees its bytes at
	// once; otherwise it is marked done and reclaimed in order.
	outstanding := atomic.LoadUint32(r.w.inFlight) != 0
	h, last := h0, h0
	pending := 0
	for n < max {
		if h >= r.tailCache {
			sealed := atomic.LoadUint32(r.w.sealed) != 0 // before tail: see every put that preceded the seal
			t := atomic.LoadUint64(r.w.tail)
			if err = r.checkSpan("head/tail", h, t); err != nil {
				break
			}
			r.tailCache = t
			if h == t {
				if n == 0 {
					err = ErrEmpty
					if sealed && atomic.LoadUint32(r.w.inFlight) == 0 {
						err = io.EOF
					}
				}
				break
			}
		}
		hdr, size, e := r.record(h, r.tailCache)
		if e != nil {
			err = e
			break
		}
		if headerState(hdr) == statePad {
			h += size
			continue
		}
		if headerState(hdr) != stateReady {
			err = corrupt("record at %d above head has state %d", h, headerState(hdr))
			break
		}
		l := headerLen(hdr)
		if maxBytes > 0 && len(dst) > 0 && len(dst)+int(l) > maxBytes {
			break
		}
		idx := h & r.mask
		if TestHook != nil {
			TestHook(HookGet)
		}
		dst = append(dst, r.data[idx+r.hdr:idx+r.hdr+l]...)
		if ends != nil {
			*ends = append(*ends, len(dst))
		}
		if outstanding {
			storeHeader(r.data, idx, withState(hdr, stateDone, 0))
		}
		h += size
		n++
		pending++
		// Free large batches in parts, so that producers refill the ring
		// while the rest is copied out.
		if h-last >= r.cap/8 {
			r.commitGet(h, pending, outstanding)
			r.wake(true)
			pending, last = 0, h
		}
	}
	if n > 0 {
		err = nil
	}
	if h != last {
		r.commitGet(h, pending, outstanding)
	}
	r.unlock(r.w.consLock)
	if h != last {
		r.wake(true)
	}
	return dst, n, err
}

// lockCons takes the consumer lock, repairing what a consumer that died
// holding it left behind. The caller holds cmu.
func (r *Ring) lockCons(consumer, try bool, done <-chan struct{}) error {
	if err := r.usable(); err != nil {
		return err
	}
	if consumer {
		r.setRole(RoleConsumer)
	}
	if err := r.lock(r.w.consLock, try, done); err != nil {
		return err
	}
	if atomic.LoadUint32(r.w.repair) != 0 {
		return r.repairLocked()
	}
	return nil
}

// repairLocked runs repair with the consumer lock held, releasing the lock
// if repair fails.
func (r *Ring) repairLocked() error {
	err := r.repair()
	if err != nil {
		r.unlock(r.w.consLock)
	}
	return err
}

// commitGet publishes the taking of n records at head, which ends at h.
func (r *Ring) commitGet(h uint64, n int, outstanding bool) {
	if n > 0 {
		atomic.StoreUint64(r.w.gets, atomic.LoadUint64(r.w.gets)+uint64(n))
	}
	atomic.StoreUint64(r.w.head, h) // commit
	if outstanding {
		r.reclaim()
	}
}

// reclaimed is the position below which the ring's bytes are free: head
// while no delivery is held (then the free word is stale), else free. Head
// is read first: a Receive stores free, then the in-flight count, then head.
func (r *Ring) reclaimed() uint64 {
	h := atomic.LoadUint64(r.w.head)
	if atomic.LoadUint32(r.w.inFlight) == 0 {
		return h
	}
	return atomic.LoadUint64(r.w.free)
}

// HasData reports whether a message may be waiting, without locking: used
// by waiters spinning before they sleep. After a fault it reports true, so
// that the waiter's next call finds the fault.
func (r *Ring) HasData() (ok bool) {
	if !r.cannotFault {
		defer r.guardPoll(&ok, debug.SetPanicOnFault(true))
	}
	return atomic.LoadUint64(r.w.tail) != atomic.LoadUint64(r.w.head) || atomic.LoadUint32(r.w.sealed) != 0 ||
		atomic.LoadUint32(r.w.returned) != 0
}

// Free returns how many ring bytes are free now, without locking: an upper
// bound on what the records put next may take. After a fault it is 0, and
// Faulted says why.
func (r *Ring) Free() uint64 {
	defer r.guard(nil, debug.SetPanicOnFault(true), nil, nil)
	f := r.reclaimed()
	t := atomic.LoadUint64(r.w.tail)
	if t < f || t-f > r.cap {
		return 0
	}
	return r.cap - (t - f)
}

// HasSpace reports whether n bytes of message may fit now. After a fault
// it reports true, so that the waiter's next call finds the fault.
func (r *Ring) HasSpace(n int) (ok bool) {
	if !r.cannotFault {
		defer r.guardPoll(&ok, debug.SetPanicOnFault(true))
	}
	f := r.reclaimed()
	t := atomic.LoadUint64(r.w.tail)
	return t < f || t-f+2*r.recordSize(n) <= r.cap || atomic.LoadUint32(r.w.sealed) != 0
}

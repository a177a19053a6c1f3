package ring

import (
	"errors"
	"io"
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
	HookPut = "put" // a producer holds the lock and has copied half the message
	HookGet = "get" // a consumer holds the lock and is about to copy a message out
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
func (r *Ring) Put(msg []byte, msgs [][]byte, try bool, done <-chan struct{}) (int, error) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	return r.put(msg, msgs, nil, try, done)
}

// PutTrailerExclusive writes one record holding msg followed by trailer: a
// framing layer above the ring adds its marks this way without copying msg
// first. It does not take the ring's local mutex: the caller guarantees that
// no other goroutine puts through, seals or closes this Ring meanwhile.
func (r *Ring) PutTrailerExclusive(msg, trailer []byte, try bool, done <-chan struct{}) error {
	_, err := r.put(msg, nil, trailer, try, done)
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
	if r.closed.Load() {
		return 0, ErrClosed
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
	// tail comes from shared memory: check it against head before writing
	// anything at its index.
	if t < r.headCache || t-r.headCache > r.cap || t%RecordAlign != 0 {
		head := atomic.LoadUint64(r.w.head)
		if err := r.checkSpan("head/tail", head, t); err != nil {
			return 0, err
		}
		r.headCache = head
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
	size := RecordSize(n)
	idx := t & r.mask
	need, pad := size, uint64(0)
	if idx+size > r.cap {
		pad = r.cap - idx
		need += pad
	}
	if t+need-r.headCache > r.cap {
		head := atomic.LoadUint64(r.w.head)
		if err := r.checkSpan("head/tail", head, t); err != nil {
			return t, err
		}
		r.headCache = head
		if t+need-head > r.cap {
			return t, ErrFull
		}
	}
	if pad > 0 {
		storeHeader(r.data, idx, makeHeader(pad-HeaderBytes, statePad))
		t += pad
		idx = 0
	}
	if TestHook != nil && len(msg) > 1 {
		copy(r.data[idx+HeaderBytes:], msg[:len(msg)/2])
		TestHook(HookPut)
	}
	copy(r.data[idx+HeaderBytes:], msg)
	if len(trailer) > 0 {
		copy(r.data[idx+HeaderBytes+uint64(len(msg)):], trailer)
	}
	storeHeader(r.data, idx, makeHeader(uint64(n), stateReady))
	return t + size, nil
}

// Get appends the payloads of up to max messages to dst; if ends is not nil
// it appends the end offset in dst of each one. It returns the number of
// messages taken. With none taken the error is ErrEmpty, io.EOF (sealed and
// drained), ErrClosed, ErrBusy, ErrCanceled or ErrCorrupt. maxBytes, if
// positive, stops the batch before a message that would make dst longer
// (unless dst is empty: a message always fits an empty dst).
func (r *Ring) Get(dst []byte, ends *[]int, max, maxBytes int, try bool, done <-chan struct{}) ([]byte, int, error) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if r.closed.Load() {
		return dst, 0, ErrClosed
	}
	r.setRole(RoleConsumer)
	if err := r.lock(r.w.consLock, try, done); err != nil {
		return dst, 0, err
	}
	h0 := atomic.LoadUint64(r.w.head)
	h, last := h0, h0
	n, pending := 0, 0
	var err error
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
					if sealed {
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
		l := headerLen(hdr)
		if maxBytes > 0 && len(dst) > 0 && len(dst)+int(l) > maxBytes {
			break
		}
		idx := (h & r.mask) + HeaderBytes
		if TestHook != nil {
			TestHook(HookGet)
		}
		dst = append(dst, r.data[idx:idx+l]...)
		if ends != nil {
			*ends = append(*ends, len(dst))
		}
		h += size
		n++
		pending++
		// Free large batches in parts, so that producers refill the ring
		// while the rest is copied out.
		if h-last >= r.cap/8 {
			r.commitGet(h, pending)
			r.wake(true)
			pending, last = 0, h
		}
	}
	if n > 0 {
		err = nil
	}
	if h != last {
		r.commitGet(h, pending)
	}
	r.unlock(r.w.consLock)
	if h != last {
		r.wake(true)
	}
	return dst, n, err
}

// commitGet publishes the taking of n records ending at h.
func (r *Ring) commitGet(h uint64, n int) {
	if n > 0 {
		atomic.StoreUint64(r.w.gets, atomic.LoadUint64(r.w.gets)+uint64(n))
	}
	atomic.StoreUint64(r.w.head, h) // commit
}

// HasData reports whether a message may be waiting, without locking: used
// by waiters spinning before they sleep.
func (r *Ring) HasData() bool {
	return atomic.LoadUint64(r.w.tail) != atomic.LoadUint64(r.w.head) || atomic.LoadUint32(r.w.sealed) != 0
}

// Free returns how many ring bytes are free now, without locking: an upper
// bound on what the records put next may take.
func (r *Ring) Free() uint64 {
	t, h := atomic.LoadUint64(r.w.tail), atomic.LoadUint64(r.w.head)
	if t < h || t-h > r.cap {
		return 0
	}
	return r.cap - (t - h)
}

// HasSpace reports whether n bytes of message may fit now.
func (r *Ring) HasSpace(n int) bool {
	t, f := atomic.LoadUint64(r.w.tail), atomic.LoadUint64(r.w.head)
	return t < f || t-f+2*RecordSize(n) <= r.cap || atomic.LoadUint32(r.w.sealed) != 0
}

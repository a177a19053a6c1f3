package ring

import (
	"runtime/debug"
	"sync/atomic"
)

// Put writes msg. The error is ErrFull (no room), ErrSealed, ErrTooLarge,
// ErrClosed, ErrBusy, ErrCanceled or ErrCorrupt (for good, once any process
// found the queue corrupt: see corrupt.go).
func (r *Ring) Put(msg []byte, wait Wait) (err error) {
	r.pmu.Lock()
	if r.cannotFault {
		defer r.pmu.Unlock()
	} else {
		defer r.unlockGuard(&r.pmu, &err, debug.SetPanicOnFault(true), r.w.prodLock)
	}
	if err = r.putOne(msg, nil, wait); err != nil {
		err = r.fail(err)
	}
	return err
}

// PutBatch writes as many of msgs as fit, in order, and returns how many it
// wrote. With nothing written the error is one of Put's.
func (r *Ring) PutBatch(msgs [][]byte, wait Wait) (n int, err error) {
	r.pmu.Lock()
	if r.cannotFault {
		defer r.pmu.Unlock()
	} else {
		defer r.unlockGuard(&r.pmu, &err, debug.SetPanicOnFault(true), r.w.prodLock)
	}
	if n, err = r.putBatch(msgs, wait); err != nil {
		err = r.fail(err)
	}
	return n, err
}

// PutTrailerExclusive writes one record holding msg followed by trailer: a
// framing layer above the ring adds its marks this way without copying msg
// first. It does not take the ring's local mutex: the caller guarantees that
// no other goroutine puts through, seals or closes this Ring meanwhile.
func (r *Ring) PutTrailerExclusive(msg, trailer []byte, wait Wait) (err error) {
	if !r.cannotFault {
		defer r.guard(&err, debug.SetPanicOnFault(true), r.w.prodLock, nil)
	}
	if err = r.putOne(msg, trailer, wait); err != nil {
		err = r.fail(err)
	}
	return err
}

// putOne writes one record of msg and trailer. It runs with the producers
// of this Ring excluded.
func (r *Ring) putOne(msg, trailer []byte, wait Wait) error {
	if uint64(len(msg)+len(trailer)) > r.maxM {
		return ErrTooLarge
	}
	t, err := r.beginPut(wait)
	if err != nil {
		return err
	}
	t, err = r.write(t, msg, trailer)
	if err == nil {
		r.commitPut(t, 1)
	}
	r.unlock(r.w.prodLock)
	if err == nil {
		r.wake(ForData)
	}
	return err
}

// putBatch is PutBatch with the producers of this Ring excluded.
func (r *Ring) putBatch(msgs [][]byte, wait Wait) (int, error) {
	for _, m := range msgs {
		if uint64(len(m)) > r.maxM {
			return 0, ErrTooLarge
		}
	}
	t, err := r.beginPut(wait)
	if err != nil {
		return 0, err
	}
	n, pending, last := 0, 0, t
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
			r.wake(ForData)
			pending, last = 0, t
		}
	}
	if pending > 0 {
		r.commitPut(t, pending)
	}
	r.unlock(r.w.prodLock)
	if n == 0 {
		return 0, err
	}
	r.wake(ForData)
	return n, nil
}

// beginPut takes the producer lock and returns the tail to write at. On
// error it holds no lock.
func (r *Ring) beginPut(wait Wait) (uint64, error) {
	if err := r.usable(); err != nil {
		return 0, err
	}
	r.setRole(RoleProducer)
	if err := r.lock(r.w.prodLock, wait); err != nil {
		return 0, err
	}
	if s := atomic.LoadUint32(r.w.sealed); s != 0 {
		r.unlock(r.w.prodLock)
		if s != sealedBit {
			return 0, r.stop(s)
		}
		return 0, ErrSealed
	}
	t := atomic.LoadUint64(r.w.tail)
	// tail comes from shared memory: check it against free before writing
	// anything at its index.
	if t < r.freeCache || t-r.freeCache > r.cap || t&(r.algn-1) != 0 {
		free := r.reclaimed()
		if err := r.checkSpan("free/tail", free, t); err != nil {
			r.unlock(r.w.prodLock)
			return 0, err
		}
		r.freeCache = free
	}
	return t, nil
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
	if hooked() && len(msg) > 1 {
		copy(r.data[idx+r.hdr:], msg[:len(msg)/2])
		hook(HookPut)
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

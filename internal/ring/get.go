package ring

import (
	"io"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Get appends the payload of the next message to dst. With none taken the
// error is ErrEmpty, io.EOF (sealed and drained), ErrClosed, ErrBusy,
// ErrCanceled or ErrCorrupt, and dst comes back as it was. A message given
// back by Nack or a dead consumer comes first.
func (r *Ring) Get(dst []byte, wait Wait) ([]byte, error) {
	out, n, err := r.get(dst, nil, 1, 0, wait)
	if n == 0 && err != nil {
		// Nothing taken: dst as it came, even after a fault cut a copy
		// short (which leaves the results zero).
		return dst, err
	}
	return out, err
}

// GetBatch appends the payloads of up to max messages to dst, and the end
// offset in dst of each one to ends. It returns the number of messages
// taken; with none taken the error is one of Get's, and dst and ends come
// back as they were. maxBytes, if positive, stops the batch before a
// message that would make dst longer (unless dst is empty: a message always
// fits an empty dst). Messages given back by Nack or a dead consumer come
// first.
func (r *Ring) GetBatch(dst []byte, ends *[]int, max, maxBytes int, wait Wait) ([]byte, int, error) {
	had := len(*ends)
	out, n, err := r.get(dst, ends, max, maxBytes, wait)
	if n == 0 && err != nil {
		*ends = (*ends)[:had]
		return dst, 0, err
	}
	return out, n, err
}

// get is GetBatch, where ends may be nil, holding cmu: it takes the
// consumer lock, gives back expired deliveries, delivers the messages given
// back, then takes ready records at head until it has max. With no delivery
// held below head, taking a record frees its bytes at once; otherwise it is
// marked done and reclaimed in order.
func (r *Ring) get(dst []byte, ends *[]int, max, maxBytes int, wait Wait) (_ []byte, _ int, err error) {
	r.cmu.Lock()
	if r.cannotFault {
		defer r.cmu.Unlock()
	} else {
		defer r.unlockGuard(&r.cmu, &err, debug.SetPanicOnFault(true), r.w.consLock)
	}
	if err := r.lockCons(RoleConsumer, wait); err != nil {
		return dst, 0, r.fail(err)
	}
	if atomic.LoadUint32(r.w.inFlight) != 0 {
		r.sweep(time.Now().UnixNano(), false)
	}
	n := 0
	if atomic.LoadUint32(r.w.returned) != 0 {
		if dst, n, err = r.getReturned(dst, ends, max, maxBytes); err != nil {
			r.unlock(r.w.consLock)
			return dst, 0, r.fail(err)
		}
	}
	outstanding := atomic.LoadUint32(r.w.inFlight) != 0
	h := atomic.LoadUint64(r.w.head)
	last, pending := h, 0
	for n < max {
		if h >= r.tailCache {
			if err = r.refreshTail(h); err != nil {
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
		hook(HookGet)
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
			r.wake(ForSpace)
			pending, last = 0, h
		}
	}
	if err != nil {
		err = r.fail(err)
	}
	if n > 0 {
		err = nil // a damage found is recorded: the next call returns it
	}
	if h != last {
		r.commitGet(h, pending, outstanding)
	}
	r.unlock(r.w.consLock)
	if h != last {
		r.wake(ForSpace)
	}
	return dst, n, err
}

// refreshTail reads tail into tailCache once head has reached h, the cached
// tail. Where h is tail too, the error is ErrEmpty, or io.EOF when the queue
// is sealed and nothing is held.
func (r *Ring) refreshTail(h uint64) error {
	s := atomic.LoadUint32(r.w.sealed) // before tail: see every put that preceded the seal
	if s&^sealedBit != 0 {
		return r.stop(s)
	}
	sealed := s != 0
	t := atomic.LoadUint64(r.w.tail)
	if err := r.checkSpan("head/tail", h, t); err != nil {
		return err
	}
	r.tailCache = t
	if h != t {
		return nil
	}
	if sealed && atomic.LoadUint32(r.w.inFlight) == 0 {
		return io.EOF
	}
	return ErrEmpty
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

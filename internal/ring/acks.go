package ring

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Acknowledgement mode.
//
// Receive takes the record at head like Get but leaves it in the ring,
// marked taken, with an entry of the deliveries table naming its holder, its
// lease deadline and how often it was delivered. Ack marks the record done;
// Nack, an expired lease or a dead holder turns the entry "returned", and the
// next Receive (or Get) takes returned messages before new ones. Records
// below head are reclaimed in position order once done, so free (the
// position producers may write up to, a ring ahead) trails head while
// deliveries are held.
//
// Everything here runs under the consumer lock. Each step's stores are
// ordered so that a consumer killed between any two of them leaves a state
// that repair (run by the next holder of the lock) puts right without losing
// or duplicating a message.

// ErrLeaseExpired means a delivery is no longer held by this process: its
// lease ran out, or its holder was thought dead, and it was given back.
var ErrLeaseExpired = errors.New("mpq: delivery lease expired; the message was given back")

// sweepEvery is how often consumers look for expired leases and dead holders.
const sweepEvery = 10 * time.Millisecond

// A Delivery names a message held by this process.
type Delivery struct {
	Idx      uint32 // entry in the deliveries table
	Pos      uint64 // position of the record
	Token    uint32 // the entry's token when delivered
	Count    uint32 // deliveries, this one included
	Deadline int64  // end of the lease, unix nanoseconds
}

func (r *Ring) entState(i uint32) uint32 { return atomic.LoadUint32(entU32(r.mem, i, entState)) }

// Receive copies the next message into dst (growing it as needed) and holds
// it until Ack, Nack or lease from now. With nothing to deliver the error is
// ErrEmpty (also while the deliveries table is full), io.EOF (sealed, drained
// and nothing held), ErrClosed, ErrBusy, ErrCanceled or ErrCorrupt.
func (r *Ring) Receive(dst []byte, lease time.Duration, wait Wait) (_ []byte, _ Delivery, err error) {
	r.cmu.Lock()
	if r.cannotFault {
		defer r.cmu.Unlock()
	} else {
		defer r.unlockGuard(&r.cmu, &err, debug.SetPanicOnFault(true), r.w.consLock)
	}
	if err := r.lockCons(RoleConsumer, wait); err != nil {
		return dst, Delivery{}, r.fail(err)
	}
	dst, d, err := r.receiveLocked(dst, lease)
	r.unlock(r.w.consLock)
	if err != nil {
		err = r.fail(err)
	}
	return dst, d, err
}

func (r *Ring) receiveLocked(dst []byte, lease time.Duration) ([]byte, Delivery, error) {
	now := time.Now().UnixNano()
	r.sweep(now, false)
	if atomic.LoadUint32(r.w.returned) != 0 {
		if i, ok := r.dueReturned(now); ok {
			pos, hdr, err := r.entryRecord(i)
			if err != nil {
				return dst, Delivery{}, err
			}
			d := r.hold(i, pos, now, lease, atomic.LoadUint32(entU32(r.mem, i, entCount))+1)
			atomic.AddUint32(r.w.returned, ^uint32(0))
			return r.copyOut(dst, pos, hdr), d, nil
		}
	}
	if atomic.LoadUint32(r.w.inFlight) >= MaxInFlight {
		return dst, Delivery{}, ErrEmpty
	}
	h0 := atomic.LoadUint64(r.w.head)
	h := h0
	for {
		s := atomic.LoadUint32(r.w.sealed)
		if s&^sealedBit != 0 {
			return dst, Delivery{}, r.stop(s)
		}
		sealed := s != 0
		t := atomic.LoadUint64(r.w.tail)
		if err := r.checkSpan("head/tail", h, t); err != nil {
			return dst, Delivery{}, err
		}
		if h == t {
			if h != h0 {
				r.skipPads(h)
			}
			if sealed && atomic.LoadUint32(r.w.inFlight) == 0 {
				return dst, Delivery{}, io.EOF
			}
			return dst, Delivery{}, ErrEmpty
		}
		hdr, size, err := r.record(h, t)
		if err != nil {
			return dst, Delivery{}, err
		}
		switch headerState(hdr) {
		case statePad:
			h += size
			continue
		case stateReady:
		default:
			return dst, Delivery{}, corrupt("record at %d above head has state %d", h, headerState(hdr))
		}
		i, err := r.freeEntry()
		if err != nil {
			return dst, Delivery{}, err
		}
		// With nothing held, free is stale: bring it to the first record
		// not yet reclaimed before counting this delivery.
		if atomic.LoadUint32(r.w.inFlight) == 0 {
			atomic.StoreUint64(r.w.free, h0)
		}
		d := r.hold(i, h, now, lease, 1)
		atomic.AddUint32(r.w.inFlight, 1)
		hook(HookReceive)
		// Counted before it is marked taken: repair moves head over a
		// taken record without counting it, so a death after the mark
		// must find it counted. (A death between the count and the mark
		// leaves it ready, to be taken and counted again: Gets, and Puts
		// after the recount, then count it once too often and Len stays
		// right, as after a Get that dies before moving head.)
		atomic.StoreUint64(r.w.gets, atomic.LoadUint64(r.w.gets)+1)
		storeHeader(r.data, h&r.mask, withState(hdr, stateTaken, i))
		hook(HookTaken)
		atomic.StoreUint64(r.w.head, h+size) // commit
		return r.copyOut(dst, h, hdr), d, nil
	}
}

// skipPads moves head over padding records to h.
func (r *Ring) skipPads(h uint64) {
	atomic.StoreUint64(r.w.head, h)
	if atomic.LoadUint32(r.w.inFlight) == 0 {
		r.wake(ForSpace)
	}
}

func (r *Ring) copyOut(dst []byte, pos, hdr uint64) []byte {
	idx := pos&r.mask + r.hdr
	return append(dst[:0], r.data[idx:idx+headerLen(hdr)]...)
}

// hold makes entry i a delivery of the record at pos to this process. The
// entry's state is stored last: an entry is either in use with all its
// fields set, or free.
func (r *Ring) hold(i uint32, pos uint64, now int64, lease time.Duration, count uint32) Delivery {
	token := atomic.LoadUint32(entU32(r.mem, i, entToken)) + 1
	d := Delivery{Idx: i, Pos: pos, Token: token, Count: count, Deadline: now + int64(lease)}
	atomic.StoreUint64(entU64(r.mem, i, entPos), pos)
	atomic.StoreUint32(entU32(r.mem, i, entOwner), r.self)
	atomic.StoreUint32(entU32(r.mem, i, entCount), count)
	atomic.StoreUint32(entU32(r.mem, i, entToken), token)
	atomic.StoreInt64(entI64(r.mem, i, entDeadline), d.Deadline)
	atomic.StoreUint32(entU32(r.mem, i, entState), entHeld)
	return d
}

// freeEntry finds an unused entry of the deliveries table.
func (r *Ring) freeEntry() (uint32, error) {
	for k := uint32(0); k < MaxInFlight; k++ {
		i := (r.entHint + k) % MaxInFlight
		if r.entState(i) == entFree {
			r.entHint = (i + 1) % MaxInFlight
			return i, nil
		}
	}
	return 0, corrupt("deliveries table full but counted %d in use", atomic.LoadUint32(r.w.inFlight))
}

// dueReturned finds the returned entry of the lowest position whose delay
// has passed.
func (r *Ring) dueReturned(now int64) (uint32, bool) {
	best, found := uint32(0), false
	var bestPos uint64
	for i := uint32(0); i < MaxInFlight; i++ {
		if r.entState(i) != entReturned || atomic.LoadInt64(entI64(r.mem, i, entDeadline)) > now {
			continue
		}
		if p := atomic.LoadUint64(entU64(r.mem, i, entPos)); !found || p < bestPos {
			best, bestPos, found = i, p, true
		}
	}
	return best, found
}

// entryRecord validates entry i against its record: the record lies between
// free and head, is taken and names entry i.
func (r *Ring) entryRecord(i uint32) (uint64, uint64, error) {
	pos := atomic.LoadUint64(entU64(r.mem, i, entPos))
	free, head := r.reclaimed(), atomic.LoadUint64(r.w.head)
	if err := r.checkSpan("free/head", free, head); err != nil {
		return 0, 0, err
	}
	if pos < free || pos >= head {
		return 0, 0, corrupt("delivery %d at %d outside %d..%d", i, pos, free, head)
	}
	hdr, _, err := r.record(pos, head)
	if err != nil {
		return 0, 0, err
	}
	if headerState(hdr) != stateTaken || headerIdx(hdr) != i {
		return 0, 0, corrupt("record at %d of delivery %d has header %#x", pos, i, hdr)
	}
	return pos, hdr, nil
}

// getReturned is Get's part for messages given back: they are taken for good.
func (r *Ring) getReturned(dst []byte, ends *[]int, max, maxBytes int) ([]byte, int, error) {
	now := time.Now().UnixNano()
	n := 0
	for n < max && atomic.LoadUint32(r.w.returned) != 0 {
		i, ok := r.dueReturned(now)
		if !ok {
			break
		}
		pos, hdr, err := r.entryRecord(i)
		if err != nil {
			if n > 0 {
				break // deliver what was taken; the error comes back next time
			}
			return dst, n, err
		}
		l := headerLen(hdr)
		if maxBytes > 0 && len(dst) > 0 && len(dst)+int(l) > maxBytes {
			break
		}
		idx := pos&r.mask + r.hdr
		dst = append(dst, r.data[idx:idx+l]...)
		if ends != nil {
			*ends = append(*ends, len(dst))
		}
		r.finish(i, pos, hdr)
		atomic.AddUint32(r.w.returned, ^uint32(0))
		n++
	}
	if n > 0 {
		if atomic.LoadUint32(r.w.inFlight) == 0 {
			r.wake(ForSpace)
		} else {
			r.reclaim()
		}
	}
	return dst, n, nil
}

// finish marks the record of entry i done and frees the entry.
func (r *Ring) finish(i uint32, pos, hdr uint64) {
	storeHeader(r.data, pos&r.mask, withState(hdr, stateDone, 0))
	hook(HookAck)
	atomic.StoreUint32(entU32(r.mem, i, entState), entFree)
	atomic.AddUint32(r.w.inFlight, ^uint32(0))
}

// held checks that d still names a delivery this process holds.
func (r *Ring) held(d Delivery) (uint64, error) {
	if d.Idx >= MaxInFlight {
		// Not from shared memory: not the queue's corrupt state.
		return 0, fmt.Errorf("%w: delivery %d out of range", ErrCorrupt, d.Idx)
	}
	i := d.Idx
	if r.entState(i) != entHeld || atomic.LoadUint32(entU32(r.mem, i, entOwner)) != r.self ||
		atomic.LoadUint32(entU32(r.mem, i, entToken)) != d.Token || atomic.LoadUint64(entU64(r.mem, i, entPos)) != d.Pos {
		return 0, ErrLeaseExpired
	}
	_, hdr, err := r.entryRecord(i)
	return hdr, err
}

// settle runs f on a delivery this process holds, under the consumer lock.
func (r *Ring) settle(d Delivery, f func(hdr uint64)) (err error) {
	r.cmu.Lock()
	if r.cannotFault {
		defer r.cmu.Unlock()
	} else {
		defer r.unlockGuard(&r.cmu, &err, debug.SetPanicOnFault(true), r.w.consLock)
	}
	if err := r.lockCons(noRole, Block(nil)); err != nil {
		return r.fail(err)
	}
	hdr, err := r.held(d)
	if err == nil {
		f(hdr)
	}
	r.unlock(r.w.consLock)
	if err != nil {
		err = r.fail(err)
	}
	return err
}

// Ack marks the delivery's message done, counted as acknowledged.
func (r *Ring) Ack(d Delivery) error { return r.done(d, false) }

// DeadLettered marks the delivery's message done, counted as dead-lettered
// (it reached MaxDeliveries) rather than acknowledged.
func (r *Ring) DeadLettered(d Delivery) error { return r.done(d, true) }

// done marks the delivery's message done; dead says how to count it.
func (r *Ring) done(d Delivery, dead bool) error {
	return r.settle(d, func(hdr uint64) {
		full := atomic.LoadUint32(r.w.inFlight) >= MaxInFlight
		r.finish(d.Idx, d.Pos, hdr)
		if dead {
			atomic.AddUint64(r.w.dead, 1)
		} else {
			atomic.AddUint64(r.w.acks, 1)
		}
		if atomic.LoadUint32(r.w.inFlight) == 0 {
			r.wake(ForSpace) // everything below head is free now
		} else {
			r.reclaim()
		}
		// Receivers may wait for a table entry, or for the last delivery
		// of a sealed queue to end.
		if full || atomic.LoadUint32(r.w.inFlight) == 0 && r.Sealed() {
			r.wake(ForData)
		}
	})
}

// Nack gives the delivery's message back, to be delivered again from
// notBefore (unix nanoseconds) on.
func (r *Ring) Nack(d Delivery, notBefore int64) error {
	return r.settle(d, func(uint64) {
		r.giveBack(d.Idx, notBefore)
		r.wake(ForData)
	})
}

// Extend moves the delivery's lease deadline.
func (r *Ring) Extend(d Delivery, deadline int64) error {
	return r.settle(d, func(uint64) {
		atomic.StoreInt64(entI64(r.mem, d.Idx, entDeadline), deadline)
	})
}

func (r *Ring) giveBack(i uint32, notBefore int64) {
	atomic.StoreUint32(entU32(r.mem, i, entOwner), 0)
	atomic.StoreInt64(entI64(r.mem, i, entDeadline), notBefore)
	atomic.StoreUint32(entU32(r.mem, i, entState), entReturned)
	atomic.AddUint32(r.w.returned, 1)
	atomic.AddUint64(r.w.redeliv, 1)
}

// sweep gives back the deliveries whose lease ended or whose holder is gone,
// at most every sweepEvery unless force is set. The caller holds the
// consumer lock.
func (r *Ring) sweep(now int64, force bool) {
	n := atomic.LoadUint32(r.w.inFlight)
	if n == 0 || !force && now-atomic.LoadInt64(r.w.scanAt) < int64(sweepEvery) {
		return
	}
	atomic.StoreInt64(r.w.scanAt, now)
	var alive [MaxProcs]int8 // 0 unknown, 1 alive, -1 gone
	back := 0
	for i := uint32(0); i < MaxInFlight && n > 0; i++ {
		st := r.entState(i)
		if st == entFree {
			continue
		}
		n--
		if st != entHeld {
			continue
		}
		owner := atomic.LoadUint32(entU32(r.mem, i, entOwner))
		gone := atomic.LoadInt64(entI64(r.mem, i, entDeadline)) <= now
		if !gone {
			// A slot's liveness is cached for its current generation only:
			// an owner of an older generation is gone even though a live
			// process now holds its slot.
			s := refSlot(owner)
			switch {
			case refGen(owner) != atomic.LoadUint32(slotU32(r.mem, s, slotGen))&genMask:
				gone = true
			case alive[s] == 0:
				alive[s] = -1
				if r.alive(owner) {
					alive[s] = 1
				}
				fallthrough
			default:
				gone = alive[s] < 0
			}
		}
		if gone {
			r.giveBack(i, now)
			back++
		}
	}
	if back > 0 {
		r.wake(ForData)
	}
}

// Sweep gives back, now, the deliveries whose lease ended or whose holder is
// gone. It does not wait for a live holder of the consumer lock.
func (r *Ring) Sweep() (err error) {
	r.cmu.Lock()
	if r.cannotFault {
		defer r.cmu.Unlock()
	} else {
		defer r.unlockGuard(&r.cmu, &err, debug.SetPanicOnFault(true), r.w.consLock)
	}
	if err := r.lockCons(noRole, Try); err != nil {
		return r.fail(err)
	}
	r.sweep(time.Now().UnixNano(), true)
	r.unlock(r.w.consLock)
	return nil
}

// reclaim moves free over the done and padding records above it.
func (r *Ring) reclaim() {
	h := atomic.LoadUint64(r.w.head)
	if atomic.LoadUint32(r.w.inFlight) == 0 {
		return
	}
	f0 := atomic.LoadUint64(r.w.free)
	f := f0
	for f < h {
		hdr, size, err := r.record(f, h)
		if err != nil {
			break // left for repair or a reader to report
		}
		if st := headerState(hdr); st != stateDone && st != statePad {
			break
		}
		f += size
	}
	if f != f0 {
		atomic.StoreUint64(r.w.free, f)
		r.wake(ForSpace)
	}
}

// repair puts right what a consumer killed while holding the consumer lock
// left half done. It is idempotent: if it dies too, the next holder runs it
// again.
func (r *Ring) repair() error {
	free, head, tail := r.reclaimed(), atomic.LoadUint64(r.w.head), atomic.LoadUint64(r.w.tail)
	if err := r.checkSpan("free/tail", free, tail); err != nil {
		return err
	}
	if head < free || head > tail || head&(r.algn-1) != 0 {
		return corrupt("head %d outside %d..%d", head, free, tail)
	}
	// A Receive that marked its record taken and died before moving head
	// (perhaps over padding it had skipped first).
	for p := head; p < tail; {
		hdr, size, err := r.record(p, tail)
		if err != nil {
			return err
		}
		st := headerState(hdr)
		if st != stateTaken && st != statePad {
			break
		}
		p += size
		if st == stateTaken {
			head = p
		}
	}
	// A Get that marked records done and died before moving head: it
	// handed them to nobody.
	for p := head; p < tail; {
		hdr, size, err := r.record(p, tail)
		if err != nil {
			return err
		}
		switch headerState(hdr) {
		case stateDone:
			storeHeader(r.data, p&r.mask, withState(hdr, stateReady, 0))
		case stateTaken:
			return corrupt("taken record at %d above head %d", p, head)
		}
		p += size
	}
	// Below head every record is taken, done or padding: a Get stores head
	// last, and with deliveries held marks what it takes done first.
	for p := free; p < head; {
		hdr, size, err := r.record(p, head)
		if err != nil {
			return err
		}
		if headerState(hdr) == stateReady {
			return corrupt("ready record at %d below head %d", p, head)
		}
		p += size
	}
	atomic.StoreUint64(r.w.free, free)
	atomic.StoreUint64(r.w.head, head)
	if err := r.rebuildEntries(free, head, false); err != nil {
		return err
	}
	r.reclaim()
	atomic.StoreUint32(r.w.recount, 1)
	// Only the repair flag: a process that found the queue corrupt
	// meanwhile set its own bit, which stays.
	atomic.CompareAndSwapUint32(r.w.repair, repairNeeded, 0)
	return nil
}

// rebuildEntries makes the deliveries table agree with the taken records
// between free and head: an entry whose record does not name it is freed,
// and a taken record without an entry gets one, given back. With returnAll,
// every delivery is given back (nobody holds anything after a crash).
func (r *Ring) rebuildEntries(free, head uint64, returnAll bool) error {
	var used [MaxInFlight]bool
	for p := free; p < head; {
		hdr, size, err := r.record(p, head)
		if err != nil {
			return err
		}
		if headerState(hdr) == stateTaken {
			i := headerIdx(hdr)
			switch {
			case used[i]:
				return corrupt("two records taken with delivery %d", i)
			case r.entState(i) != entFree && atomic.LoadUint64(entU64(r.mem, i, entPos)) == p:
			default:
				atomic.StoreUint64(entU64(r.mem, i, entPos), p)
				atomic.StoreUint32(entU32(r.mem, i, entCount), 1)
				atomic.StoreUint32(entU32(r.mem, i, entState), entHeld)
				r.giveBackQuiet(i)
			}
			used[i] = true
		}
		p += size
	}
	var inFlight, returned uint32
	for i := uint32(0); i < MaxInFlight; i++ {
		st := r.entState(i)
		switch {
		case !used[i]:
			if st != entFree {
				atomic.StoreUint32(entU32(r.mem, i, entState), entFree)
			}
			continue
		case st == entHeld && returnAll:
			r.giveBackQuiet(i)
			st = entReturned
		case st == entReturned && atomic.LoadUint32(entU32(r.mem, i, entOwner)) != 0:
			// A Receive died redelivering it, having set the owner and a
			// lease deadline but not the state: due now, as before.
			r.giveBackQuiet(i)
		case st != entHeld && st != entReturned:
			return corrupt("delivery %d in state %d", i, st)
		}
		inFlight++
		if st == entReturned {
			returned++
		}
	}
	atomic.StoreUint32(r.w.inFlight, inFlight)
	atomic.StoreUint32(r.w.returned, returned)
	return nil
}

func (r *Ring) giveBackQuiet(i uint32) {
	atomic.StoreUint32(entU32(r.mem, i, entOwner), 0)
	atomic.StoreInt64(entI64(r.mem, i, entDeadline), 0)
	atomic.StoreUint32(entU32(r.mem, i, entState), entReturned)
}

// Positions returns tail and the reclaim position: Join waits for the
// second to reach the first as it was.
// After a fault both are 0, and Faulted says why.
func (r *Ring) Positions() (tail, free uint64) {
	defer r.guard(nil, debug.SetPanicOnFault(true), nil, nil)
	return atomic.LoadUint64(r.w.tail), r.reclaimed()
}

// Holding reports whether any delivery is held or given back: waiters then
// wake more often, to find dead holders and ended leases sooner.
func (r *Ring) Holding() bool { return atomic.LoadUint32(r.w.inFlight) != 0 }

package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"
)

// Durable queues.
//
// Every record of a durable queue has a second header word holding a CRC32C
// of its position, length, kind and payload. Including the position means a
// record left over from an earlier lap of the ring, or one found at the
// wrong place, never passes for the record that belongs there.
//
// After a crash the file holds whatever pages reached the disk: a mix of
// versions. Recover, run by the first process to open the queue when no
// other is attached, walks the records from free to tail. A record whose
// checksum fails is torn: recovery looks for the next position where a valid
// record starts, replaces the damaged stretch by padding records and counts
// it. Nothing damaged is ever delivered, and records after the damage are
// kept.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordCRC is the checksum of the durable record at pos with header word h
// and the given payload (msg then trailer; none for padding).
func recordCRC(pos, h uint64, msg, trailer []byte) uint32 {
	var b [13]byte
	binary.LittleEndian.PutUint64(b[:], pos)
	binary.LittleEndian.PutUint32(b[8:], uint32(headerLen(h)))
	b[12] = 1
	if headerState(h) == statePad {
		b[12] = 2
	}
	c := crc32.Update(0, castagnoli, b[:])
	c = crc32.Update(c, castagnoli, msg)
	if len(trailer) > 0 {
		c = crc32.Update(c, castagnoli, trailer)
	}
	return c
}

// intact reports whether a whole, undamaged record starts at pos below
// limit, and its size.
func (r *Ring) intact(pos, limit uint64) (uint64, uint64, bool) {
	// A cheap look first: recovery tries every 16 bytes of a damaged
	// stretch, and record builds an error for each miss.
	h0 := loadHeader(r.data, pos&r.mask)
	if st := headerState(h0); st < stateReady || st > stateDone || headerLen(h0) > r.maxM && st != statePad ||
		r.hdr+r.alignUp(headerLen(h0)) > limit-pos {
		return 0, 0, false
	}
	h, size, err := r.record(pos, limit)
	if err != nil {
		return 0, 0, false
	}
	idx := pos & r.mask
	if loadHeader(r.data, idx+8)>>32 != 0 {
		return 0, 0, false
	}
	var payload []byte
	if headerState(h) != statePad {
		payload = r.data[idx+r.hdr : idx+r.hdr+headerLen(h)]
	}
	if recordCRC(pos, h, payload, nil) != loadCRC(r.data, idx) {
		return 0, 0, false
	}
	return h, size, true
}

// padOver replaces the bytes from p to q by padding records, one per lap of
// the ring.
func (r *Ring) padOver(p, q uint64) {
	for p < q {
		idx := p & r.mask
		end := min(q, p+(r.cap-idx), p+(1<<31)) // a header's length has 32 bits
		h := makeHeader(end-p-r.hdr, statePad)
		storeCRC(r.data, idx, recordCRC(p, h, nil, nil))
		storeHeader(r.data, idx, h)
		p = end
	}
}

// Recover checks and repairs a durable queue's file after a crash, or
// after a process found it corrupt. The caller guarantees that no other
// process is attached, and mem maps the whole file. It returns the number
// of damaged stretches dropped. It clears the queue's corrupt state (see
// corrupt.go) once the queue is rebuilt. Damage it cannot repair
// (positions no correct writer could have left) fails it with an error
// wrapping ErrCorrupt, before it changes anything.
//
// It runs in four phases: drop the damaged stretches between free and tail
// (dropTorn), reset the records above head (readyAboveHead), give back the
// records below head (giveBackBelowHead), and store the positions and
// counters that follow (commitRecovery).
func Recover(mem []byte) (uint64, error) {
	g, err := ReadGeometry(mem, int64(len(mem)))
	if err != nil {
		return 0, err
	}
	if !g.Durable {
		return 0, nil
	}
	r := &Ring{
		mem: mem, data: mem[RingOffset : RingOffset+g.Capacity], w: wordsOf(mem),
		cap: g.Capacity, mask: g.Capacity - 1, maxM: g.MaxMessage,
		hdr: DurableHeaderBytes, algn: DurableHeaderBytes, geo: g,
	}
	torn, err := r.recover()
	if err != nil {
		// The memory is left as it was: each open tries again, and
		// Inspect (mpq stat) finds the positions inconsistent itself.
		return 0, fmt.Errorf("%w; recovery cannot repair this: remove the queue (mpq rm --force NAME, or mpq.Remove) and create it again", err)
	}
	return torn, nil
}

// recover is Recover of the ring r of the whole file.
func (r *Ring) recover() (uint64, error) {
	free, head, tail := r.reclaimed(), atomic.LoadUint64(r.w.head), atomic.LoadUint64(r.w.tail)
	if err := r.checkSpan("free/tail", free, tail); err != nil {
		return 0, err
	}
	if head < free || head > tail || head&(r.algn-1) != 0 {
		return 0, corrupt("head %d outside %d..%d", head, free, tail)
	}
	head, torn := r.dropTorn(free, head, tail)
	ready := r.readyAboveHead(head, tail)
	torn += r.giveBackBelowHead(free, head)
	if err := r.commitRecovery(free, head, ready, torn); err != nil {
		return 0, err
	}
	return torn, nil
}

// dropTorn replaces each damaged stretch between free and tail by padding,
// keeping head on a record boundary. It returns head and the number of
// stretches.
func (r *Ring) dropTorn(free, head, tail uint64) (_ uint64, torn uint64) {
	for p := free; p < tail; {
		if _, size, ok := r.intact(p, tail); ok {
			if p < head && head < p+size {
				head = p
			}
			p += size
			continue
		}
		q := p + r.algn
		for q < tail {
			if _, _, ok := r.intact(q, tail); ok {
				break
			}
			q += r.algn
		}
		r.padOver(p, q)
		torn++
		if p < head && head < q {
			head = q
		}
		p = q
	}
	return head, torn
}

// readyAboveHead marks ready the records above head marked taken or done:
// nothing is held there, they belong to takes whose head store never
// reached the disk. It returns the number of ready records.
func (r *Ring) readyAboveHead(head, tail uint64) (ready uint64) {
	for p := head; p < tail; {
		h, size, _ := r.record(p, tail)
		if st := headerState(h); st == stateTaken || st == stateDone {
			h = withState(h, stateReady, 0)
			storeHeader(r.data, p&r.mask, h)
		}
		if headerState(h) == stateReady {
			ready++
		}
		p += size
	}
	return ready
}

// giveBackBelowHead gives back every held delivery below head. The entry
// numbers on disk may be stale (pages of one flush reach the disk in any
// order), so entries are reassigned: a taken record keeps its entry, and
// its count, if the entry names it and no other record claimed it first. A
// ready record below head was taken by a Get that may never have returned:
// it is given back too, after the taken ones. It returns the number of
// messages that found no entry and were dropped.
func (r *Ring) giveBackBelowHead(free, head uint64) (torn uint64) {
	var used [MaxInFlight]bool
	var again []uint64
	for p := free; p < head; {
		h, size, _ := r.record(p, head)
		if headerState(h) == stateTaken {
			i := headerIdx(h)
			if !used[i] && r.entState(i) != entFree && atomic.LoadUint64(entU64(r.mem, i, entPos)) == p {
				used[i] = true
			} else {
				again = append(again, p)
			}
		}
		p += size
	}
	for p := free; p < head; {
		h, size, _ := r.record(p, head)
		if headerState(h) == stateReady {
			again = append(again, p)
		}
		p += size
	}
	next := uint32(0)
	for _, p := range again {
		h, _, _ := r.record(p, head)
		for next < MaxInFlight && used[next] {
			next++
		}
		if next == MaxInFlight {
			// No entry left: the message cannot be given back.
			storeHeader(r.data, p&r.mask, withState(h, stateDone, 0))
			torn++
			continue
		}
		atomic.StoreUint64(entU64(r.mem, next, entPos), p)
		atomic.StoreUint32(entU32(r.mem, next, entCount), 1)
		atomic.StoreUint32(entU32(r.mem, next, entState), entReturned)
		storeHeader(r.data, p&r.mask, withState(h, stateTaken, next))
		used[next] = true
	}
	for i := uint32(0); i < MaxInFlight; i++ {
		if used[i] {
			atomic.StoreInt64(entI64(r.mem, i, entDeadline), 0) // due now, whatever the entry held before
		} else {
			atomic.StoreUint32(entU32(r.mem, i, entState), entFree)
		}
	}
	return torn
}

// commitRecovery stores the recovered positions, rebuilds the deliveries
// table's counts, clears the locks and waiter bits no process holds any
// more, and counts the torn stretches.
func (r *Ring) commitRecovery(free, head, ready, torn uint64) error {
	atomic.StoreUint64(r.w.free, free)
	atomic.StoreUint64(r.w.head, head)
	if err := r.rebuildEntries(free, head, true); err != nil {
		return err
	}
	r.reclaimAlone()
	atomic.StoreUint64(r.w.puts, atomic.LoadUint64(r.w.gets)+ready)
	for _, w := range []*uint32{r.w.prodLock, r.w.consLock, r.w.repair, r.w.recount} {
		atomic.StoreUint32(w, 0)
	}
	for i := range r.w.dataMask {
		atomic.StoreUint64(&r.w.dataMask[i], 0)
		atomic.StoreUint64(&r.w.spaceMask[i], 0)
	}
	atomic.AddUint64(r.w.torn, torn)
	// Whatever a process found corrupt is repaired or dropped now.
	r.clearCorrupt()
	return nil
}

// reclaimAlone is reclaim without waking anyone.
func (r *Ring) reclaimAlone() {
	f, h := atomic.LoadUint64(r.w.free), atomic.LoadUint64(r.w.head)
	if atomic.LoadUint32(r.w.inFlight) == 0 {
		f = h
	}
	for f < h {
		hdr, size, err := r.record(f, h)
		if err != nil {
			break
		}
		if st := headerState(hdr); st != stateDone && st != statePad {
			break
		}
		f += size
	}
	atomic.StoreUint64(r.w.free, f)
}

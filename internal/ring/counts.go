package ring

import (
	"errors"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Counts are the queue's counters, read without locks.
type Counts struct {
	Puts, Gets, Waits, Recovered uint64
	Acks, Redelivered, Dead      uint64
	Torn                         uint64
	Len                          uint64 // messages waiting: put and not taken, or given back
	InFlight                     uint64 // deliveries held or given back
	Used                         uint64
	Sealed                       bool
	// Corrupt says what was found when the queue was found corrupt, ""
	// while it is sound (see corrupt.go). The counters of a corrupt
	// queue are as they are, never recounted.
	Corrupt string
}

// Counts reads the counters, recomputing them first if a dead process may
// have left them inconsistent. On a queue found corrupt it returns the
// counters as they are, with Corrupt set, and the corrupt state's error.
func (r *Ring) Counts() (_ Counts, err error) {
	defer r.guard(&err, debug.SetPanicOnFault(true), nil, nil)
	if err := r.usable(); err != nil {
		return Counts{}, err
	}
	// A process that died inside Put or Get may have stored its counter
	// but not its position: take its lock over and recount.
	for _, w := range []*uint32{r.w.prodLock, r.w.consLock} {
		if v := atomic.LoadUint32(w); v != 0 && v != r.self && refGen(v) != 0 && !r.alive(v) {
			atomic.StoreUint32(r.w.recount, 1)
		}
	}
	what := r.corruptText()
	if what == "" && atomic.LoadUint32(r.w.recount) != 0 {
		// Never wait here for a live holder (a stopped producer, say):
		// until the recount can run, report the counters as they are.
		// Damage the recount finds is recorded, and reported.
		if err := r.recount(); err != nil && err != ErrBusy && !errors.Is(err, ErrCorrupt) {
			return Counts{}, err
		}
		what = r.corruptText()
	}
	c := Counts{
		Gets: atomic.LoadUint64(r.w.gets), Waits: atomic.LoadUint64(r.w.waits),
		Recovered: atomic.LoadUint64(r.w.recovered), Sealed: r.Sealed(), Corrupt: what,
	}
	c.Puts = atomic.LoadUint64(r.w.puts)
	c.Acks, c.Redelivered = atomic.LoadUint64(r.w.acks), atomic.LoadUint64(r.w.redeliv)
	c.Dead, c.Torn = atomic.LoadUint64(r.w.dead), atomic.LoadUint64(r.w.torn)
	c.InFlight = uint64(min(atomic.LoadUint32(r.w.inFlight), MaxInFlight))
	if c.Puts > c.Gets {
		c.Len = c.Puts - c.Gets
	}
	c.Len += uint64(min(atomic.LoadUint32(r.w.returned), MaxInFlight))
	free := r.reclaimed()
	tail := atomic.LoadUint64(r.w.tail)
	if tail > free {
		c.Used = min(tail-free, r.cap)
	}
	if what != "" {
		return c, r.Corrupted()
	}
	return c, nil
}

// Len is the number of messages waiting.
func (r *Ring) Len() int {
	c, _ := r.Counts()
	return int(min(c.Len, 1<<62))
}

// AddWait counts one sleep of a waiter.
func (r *Ring) AddWait() { atomic.AddUint64(r.w.waits, 1) }

// recount recomputes puts from the ready records between head and tail, holding
// both locks (always producer first, then consumer). It returns ErrBusy
// rather than wait for a live holder.
func (r *Ring) recount() (err error) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	r.cmu.Lock()
	defer r.cmu.Unlock()
	defer r.guard(&err, debug.SetPanicOnFault(true), r.w.prodLock, r.w.consLock)
	if err := r.usable(); err != nil {
		return err
	}
	if err := r.lock(r.w.prodLock, Try); err != nil {
		return r.fail(err)
	}
	defer atomic.StoreUint32(r.w.prodLock, 0)
	if err := r.lockCons(noRole, Try); err != nil {
		return r.fail(err)
	}
	defer atomic.StoreUint32(r.w.consLock, 0)
	head, tail := atomic.LoadUint64(r.w.head), atomic.LoadUint64(r.w.tail)
	if err := r.checkSpan("head/tail", head, tail); err != nil {
		return r.fail(err)
	}
	var n uint64
	for pos := head; pos < tail; {
		h, size, err := r.record(pos, tail)
		if err != nil {
			return r.fail(err)
		}
		if headerState(h) == stateReady {
			n++
		}
		pos += size
	}
	atomic.StoreUint64(r.w.puts, atomic.LoadUint64(r.w.gets)+n)
	atomic.StoreUint32(r.w.recount, 0)
	return nil
}

// A Proc is a process attached to the queue, as Procs and Observe report
// it.
type Proc struct {
	Slot  int
	PID   int
	Since time.Time
	Role  uint32

	// Filled in by Observe only.
	Gone             bool // the process is no longer running
	WaitData         bool // its waiter bit for data is set
	WaitSpace        bool // its waiter bit for space is set
	PutLock, GetLock bool // it holds the producer (consumer) lock
	Holding          int  // deliveries it holds
}

// Procs returns the attached processes, this one included.
func (r *Ring) Procs() []Proc {
	var ps []Proc
	for s := 0; s < MaxProcs; s++ {
		gen := atomic.LoadUint32(slotU32(r.mem, s, slotGen))
		if gen == 0 || (s != r.slot && !r.env.Held(s)) {
			continue
		}
		ps = append(ps, Proc{
			Slot: s, PID: int(atomic.LoadUint32(slotU32(r.mem, s, slotPID))),
			Since: time.Unix(0, atomic.LoadInt64(slotI64(r.mem, s, slotSince))),
			Role:  atomic.LoadUint32(slotU32(r.mem, s, slotRole)),
		})
	}
	return ps
}

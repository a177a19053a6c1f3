package ring

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Snapshot is what an observer reads from a queue file without attaching
// to it: nothing in the file is written, no lock is taken.
type Snapshot struct {
	Geometry Geometry
	Counts   Counts
	// Stale means a process died holding the producer or consumer lock:
	// the counters may be off until the next Put or Get takes the lock
	// over and recounts (Counts of an attached Ring does that itself).
	Stale bool
	Procs []Proc // live attached processes
	// Gone are processes that are no longer running but still own part of
	// the queue: a lock, deliveries, or a waiter bit.
	Gone []Proc
}

// Observe validates mem as a queue file of size bytes for a caller that
// only reads it. env.Held must test the slots' liveness locks; Yield and
// Wake are not used.
func Observe(mem []byte, size int64, env Env) (*Snapshot, error) {
	g, err := checkMapping(mem, size)
	if err != nil {
		return nil, err
	}
	w := wordsOf(mem)
	s := &Snapshot{Geometry: g}
	o := newObserver(mem, env)
	s.Stale = o.findOwners(w)
	s.Procs, s.Gone = o.list()
	s.Counts = observeCounts(mem, w, g.Capacity)
	return s, nil
}

// An observer finds which processes are attached to a queue and what each
// one owns, live or gone.
type observer struct {
	mem []byte
	// Which slots hold a live process, and which refs are still theirs.
	live   [MaxProcs]bool
	gen    [MaxProcs]uint32
	procs  map[int]*Proc    // by slot: live ones and gone owners
	goneAt map[uint32]*Proc // by ref: gone owners whose slot was taken again
}

func newObserver(mem []byte, env Env) *observer {
	o := &observer{mem: mem, procs: map[int]*Proc{}}
	for i := range MaxProcs {
		o.gen[i] = atomic.LoadUint32(slotU32(mem, i, slotGen)) & genMask
		o.live[i] = o.gen[i] != 0 && env.Held(i)
	}
	for i := range MaxProcs {
		if o.live[i] {
			o.proc(i)
		}
	}
	return o
}

// proc returns the Proc of the process in slot, read from its slot once.
func (o *observer) proc(slot int) *Proc {
	if p := o.procs[slot]; p != nil {
		return p
	}
	p := &Proc{
		Slot: slot, PID: int(atomic.LoadUint32(slotU32(o.mem, slot, slotPID))),
		Since: time.Unix(0, atomic.LoadInt64(slotI64(o.mem, slot, slotSince))),
		Role:  atomic.LoadUint32(slotU32(o.mem, slot, slotRole)),
	}
	o.procs[slot] = p
	return p
}

// owner returns the Proc a ref belongs to: a live one, or a gone one (PID 0
// when its slot has been taken again since).
func (o *observer) owner(ref uint32) *Proc {
	slot := refSlot(ref)
	if slot >= MaxProcs || refGen(ref) == 0 {
		return nil
	}
	if o.gen[slot] == refGen(ref) {
		p := o.proc(slot)
		p.Gone = !o.live[slot]
		return p
	}
	if o.goneAt == nil {
		o.goneAt = map[uint32]*Proc{}
	}
	if p := o.goneAt[ref]; p != nil {
		return p
	}
	p := &Proc{Slot: slot, Gone: true}
	o.goneAt[ref] = p
	return p
}

// findOwners marks the holders of the locks, of the deliveries and of the
// waiter bits. It reports whether the counters may be stale.
func (o *observer) findOwners(w words) (stale bool) {
	if p := o.owner(atomic.LoadUint32(w.prodLock)); p != nil {
		p.PutLock = true
		stale = stale || p.Gone
	}
	if p := o.owner(atomic.LoadUint32(w.consLock)); p != nil {
		p.GetLock = true
		stale = stale || p.Gone
	}
	stale = stale || atomic.LoadUint32(w.recount) != 0
	for i := range uint32(MaxInFlight) {
		if atomic.LoadUint32(entU32(o.mem, i, entState)) != entHeld {
			continue
		}
		if p := o.owner(atomic.LoadUint32(entU32(o.mem, i, entOwner))); p != nil {
			p.Holding++
		}
	}
	for i := range MaxProcs {
		bit := uint64(1) << (i % 64)
		d := atomic.LoadUint64(&w.dataMask[i/64])&bit != 0
		sp := atomic.LoadUint64(&w.spaceMask[i/64])&bit != 0
		if d || sp {
			p := o.proc(i)
			p.Gone = !o.live[i]
			p.WaitData, p.WaitSpace = d, sp
		}
	}
	return stale
}

// list returns the live processes and the gone owners, in slot order.
func (o *observer) list() (live, gone []Proc) {
	for i := range MaxProcs {
		if p := o.procs[i]; p != nil {
			if p.Gone {
				gone = append(gone, *p)
			} else {
				live = append(live, *p)
			}
		}
	}
	for _, p := range o.goneAt {
		gone = append(gone, *p)
	}
	return live, gone
}

// observeCounts reads the counters of a queue of capacity bytes as they
// are, without recounting.
func observeCounts(mem []byte, w words, capacity uint64) Counts {
	var c Counts
	c.Puts, c.Gets = atomic.LoadUint64(w.puts), atomic.LoadUint64(w.gets)
	c.Waits, c.Recovered = atomic.LoadUint64(w.waits), atomic.LoadUint64(w.recovered)
	c.Acks, c.Redelivered = atomic.LoadUint64(w.acks), atomic.LoadUint64(w.redeliv)
	c.Dead, c.Torn = atomic.LoadUint64(w.dead), atomic.LoadUint64(w.torn)
	c.Sealed = atomic.LoadUint32(w.sealed)&sealedBit != 0
	inFlight := atomic.LoadUint32(w.inFlight)
	c.InFlight = uint64(min(inFlight, MaxInFlight))
	if c.Puts > c.Gets {
		c.Len = c.Puts - c.Gets
	}
	c.Len += uint64(min(atomic.LoadUint32(w.returned), MaxInFlight))
	free := atomic.LoadUint64(w.head)
	if inFlight != 0 {
		free = atomic.LoadUint64(w.free)
	}
	tail := atomic.LoadUint64(w.tail)
	if tail > free {
		c.Used = min(tail-free, capacity)
	}
	c.Corrupt = corruptDetail(mem, w)
	if c.Corrupt == "" {
		c.Corrupt = inconsistentPositions(w, capacity)
	}
	return c
}

// inconsistentPositions says what is wrong with the positions of a queue
// that no process has found damaged yet (the observer writes nothing), or
// "". They are read without locks while Puts and Gets move them, so a
// snapshot may be torn: only one that reads the same twice in a row is
// reported. Damage stays put; a busy queue's positions do not.
func inconsistentPositions(w words, capacity uint64) string {
	read := func() (free, head, tail uint64) {
		head = atomic.LoadUint64(w.head)
		free = head
		if atomic.LoadUint32(w.inFlight) != 0 {
			free = atomic.LoadUint64(w.free)
		}
		return free, head, atomic.LoadUint64(w.tail)
	}
	free, head, tail := read()
	for range 100 {
		if free <= head && head <= tail && tail-free <= capacity {
			return ""
		}
		f, h, t := read()
		if f == free && h == head && t == tail {
			return fmt.Sprintf("positions free %d, head %d, tail %d inconsistent with capacity %d", free, head, tail, capacity)
		}
		free, head, tail = f, h, t
	}
	return "" // moving all along: a queue in use, whose users check it
}

// Observe is the package-level Observe of this ring's memory, with this
// process counted among the live ones.
func (r *Ring) Observe() (_ *Snapshot, err error) {
	defer r.guard(&err, debug.SetPanicOnFault(true), nil, nil)
	if err := r.usable(); err != nil {
		return nil, err
	}
	return Observe(r.mem, int64(len(r.mem)), selfEnv{r.env, r.slot})
}

// selfEnv is an Env that also counts the caller's own slot as held, which
// its own lock test cannot see.
type selfEnv struct {
	Env
	slot int
}

func (e selfEnv) Held(slot int) bool { return slot == e.slot || e.Env.Held(slot) }

// An Attachment is a process that a queue's table records as attached and
// not closed: attached still, or dead without closing.
type Attachment struct {
	PID   int
	Since time.Time
}

// Recorded lists the attachments the process table of mem records: for a
// caller that cannot test the slots' locks and must know who might still
// be attached.
func Recorded(mem []byte) []Attachment {
	if len(mem) < EntryOffset {
		return nil // a file cut short of its table: it records no one
	}
	var as []Attachment
	for slot := range MaxProcs {
		if atomic.LoadUint32(slotU32(mem, slot, slotGen))&genMask == 0 {
			continue
		}
		if pid := atomic.LoadUint32(slotU32(mem, slot, slotPID)); pid != 0 {
			as = append(as, Attachment{PID: int(pid), Since: time.Unix(0, atomic.LoadInt64(slotI64(mem, slot, slotSince)))})
		}
	}
	return as
}

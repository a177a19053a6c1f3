package ring

// Acknowledgement mode against a model: random interleavings of Put, Get,
// Receive, Ack, Nack, Extend, expired leases, sweeps and simulated deaths
// (a consumer whose process is gone while it holds deliveries, or stopped
// for good by TestHook in the middle of Receive, Ack or Get with the
// consumer lock held, or a producer in the middle of Put: those deaths only
// in builds with the tag mpqhooks), checking after
// every step that each message is done at most once and otherwise still
// pending, held or given back, that first deliveries come in order, that
// the counters and the deliveries table agree with the records, and that
// the reclaim position never passes a record still held.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type amState uint8

const (
	amPending  amState = iota // put, never taken
	amHeld                    // held by a delivery
	amReturned                // given back, waiting to be taken again
	amDone                    // acked, dead-lettered, taken by Get, or by a consumer that died in the act
)

func (s amState) String() string {
	return [...]string{"pending", "held", "returned", "done"}[s]
}

// An amCons is one attachment of a simulated consumer process.
type amCons struct {
	r    *Ring
	slot int
	dead bool
}

type amMsg struct {
	seq     int
	data    []byte
	state   amState
	count   uint32   // deliveries by Receive
	pos     uint64   // position, once received
	holder  *amCons  // while held
	d       Delivery // the last delivery
	expired bool     // held, with its lease deadline moved into the past
}

// An amStale is a delivery its holder no longer holds.
type amStale struct {
	c *amCons
	d Delivery
}

// hookDeath is what TestHook panics with to stop a simulated process for
// good in the middle of an operation, holding a lock.
type hookDeath struct{ point string }

type ackModel struct {
	t         testing.TB
	seed      uint64
	rng       *rand.Rand
	mem       []byte
	env       *fakeEnv
	prod      *Ring
	cons      []*amCons
	msgs      []*amMsg
	stale     []amStale
	gets      uint64 // first takes: Get of a new message, or its first Receive
	acks      uint64
	redeliv   uint64
	dead      uint64
	lastFirst int // seq of the last message taken for the first time
	armPoint  string
	armCalls  int
	recent    []string       // the last operations, for failure messages
	events    map[string]int // what happened, for the log
	filling   bool
}

const amConsumers = 3

func newAckModel(t testing.TB, seed uint64) *ackModel {
	m := &ackModel{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), lastFirst: -1, events: map[string]int{}}
	m.mem = newMem(t, MinCapacity, 64)
	m.env = newEnv()
	m.prod = m.attach(0)
	for i := range amConsumers {
		m.cons = append(m.cons, &amCons{r: m.attach(1 + i), slot: 1 + i})
	}
	return m
}

func (m *ackModel) attach(slot int) *Ring {
	r := attachT(m.t, m.mem, m.env, slot)
	m.env.set(slot, true)
	return r
}

// hook is TestHook while the model runs: it kills the caller at the
// armed point's armCalls-th call.
func (m *ackModel) hook(p string) {
	if p != m.armPoint {
		return
	}
	if m.armCalls--; m.armCalls == 0 {
		m.armPoint = ""
		panic(hookDeath{p})
	}
}

// dies runs f with point armed to fire at its calls-th call, and reports
// whether it fired.
func (m *ackModel) dies(point string, calls int, f func()) (died bool) {
	m.armPoint, m.armCalls = point, calls
	defer func() {
		m.armPoint = ""
		if e := recover(); e != nil {
			if _, ok := e.(hookDeath); !ok {
				panic(e)
			}
			died = true
		}
	}()
	f()
	return false
}

func (m *ackModel) logf(format string, args ...any) {
	if len(m.recent) == 40 {
		m.recent = m.recent[1:]
	}
	m.recent = append(m.recent, fmt.Sprintf(format, args...))
}

func (m *ackModel) fatalf(format string, args ...any) {
	m.t.Helper()
	var b bytes.Buffer
	for _, l := range m.recent {
		fmt.Fprintf(&b, "\n\t%s", l)
	}
	fmt.Fprintf(&b, "\nmessages held or given back:")
	for _, x := range m.msgs {
		if x.state == amHeld || x.state == amReturned {
			fmt.Fprintf(&b, "\n\t%d %v count %d at %d, %+v", x.seq, x.state, x.count, x.pos, x.d)
			if x.holder != nil {
				fmt.Fprintf(&b, " by slot %d (ref %#x, dead %v, expired %v)", x.holder.slot, x.holder.r.self, x.holder.dead, x.expired)
			}
		}
	}
	fmt.Fprintf(&b, "\ndeliveries table:")
	for i := uint32(0); i < MaxInFlight; i++ {
		if st := m.prod.entState(i); st != entFree {
			fmt.Fprintf(&b, "\n\t%d: state %d at %d, owner %#x, token %d, count %d, deadline %d", i, st,
				atomic.LoadUint64(entU64(m.mem, i, entPos)), atomic.LoadUint32(entU32(m.mem, i, entOwner)),
				atomic.LoadUint32(entU32(m.mem, i, entToken)), atomic.LoadUint32(entU32(m.mem, i, entCount)),
				atomic.LoadInt64(entI64(m.mem, i, entDeadline)))
		}
	}
	m.t.Fatalf("seed %d: %s\nlast operations:%s", m.seed, fmt.Sprintf(format, args...), b.String())
}

func (m *ackModel) scanAt() int64 { return atomic.LoadInt64(m.prod.w.scanAt) }

// swept applies to the model the sweep a ring operation ran if scanAt moved.
func (m *ackModel) swept(before int64) {
	if m.scanAt() != before {
		m.events["sweeps by Receive"]++
		m.sweep()
	}
}

// sweep gives back the held messages whose holder is dead or whose lease
// ended, as a sweep of the ring does.
func (m *ackModel) sweep() {
	for _, x := range m.msgs {
		if x.state == amHeld && (x.holder.dead || x.expired) {
			m.giveBack(x)
		}
	}
}

func (m *ackModel) giveBack(x *amMsg) {
	if !x.holder.dead {
		m.addStale(x.holder, x.d)
	}
	x.state, x.holder, x.expired = amReturned, nil, false
	m.redeliv++
}

func (m *ackModel) addStale(c *amCons, d Delivery) {
	if len(m.stale) == 32 {
		m.stale = m.stale[1:]
	}
	m.stale = append(m.stale, amStale{c, d})
}

func (m *ackModel) done(x *amMsg) {
	if x.state == amDone {
		m.fatalf("message %d done twice", x.seq)
	}
	x.state, x.holder = amDone, nil
}

// first records that x is taken for the first time.
func (m *ackModel) first(x *amMsg) {
	if x.seq <= m.lastFirst {
		m.fatalf("message %d taken for the first time after message %d", x.seq, m.lastFirst)
	}
	m.lastFirst = x.seq
	m.gets++
}

// next returns the message a Receive or Get takes next: the earliest given
// back, else the earliest pending (nil if none); skipPending leaves pending
// ones out.
func (m *ackModel) next(skipPending bool) *amMsg {
	var pending *amMsg
	for _, x := range m.msgs {
		switch {
		case x.state == amReturned:
			return x
		case x.state == amPending && pending == nil:
			pending = x
		}
	}
	if skipPending {
		return nil
	}
	return pending
}

func (m *ackModel) inFlight() (held, returned int) {
	for _, x := range m.msgs {
		switch x.state {
		case amHeld:
			held++
		case amReturned:
			returned++
		}
	}
	return
}

func (m *ackModel) alive() []*amCons {
	var cs []*amCons
	for _, c := range m.cons {
		if !c.dead {
			cs = append(cs, c)
		}
	}
	return cs
}

func (m *ackModel) pick(cs []*amCons) *amCons { return cs[m.rng.IntN(len(cs))] }

// heldBy lists the held messages whose holder is alive.
func (m *ackModel) heldAlive() []*amMsg {
	var xs []*amMsg
	for _, x := range m.msgs {
		if x.state == amHeld && !x.holder.dead {
			xs = append(xs, x)
		}
	}
	return xs
}

func (m *ackModel) kill(c *amCons) {
	c.dead = true
	m.env.set(c.slot, false)
}

// revive attaches a new process in the slot of a dead consumer.
func (m *ackModel) revive() {
	for i, c := range m.cons {
		if c.dead {
			m.cons[i] = &amCons{r: m.attach(c.slot), slot: c.slot}
			m.logf("revive slot %d", c.slot)
			return
		}
	}
}

func (m *ackModel) put(die bool) {
	n := 2 + m.rng.IntN(63) // 2 bytes at least: the hook is in their copy
	seq := len(m.msgs)
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(seq*131 + i*7 + 1)
	}
	binary.LittleEndian.PutUint16(data, uint16(seq))
	r := m.prod
	// Full exactly when the record (and a padding record before it) does not fit.
	t := atomic.LoadUint64(r.w.tail)
	size := r.recordSize(n)
	need := size
	if idx := t & r.mask; idx+size > r.cap {
		need += r.cap - idx
	}
	full := t+need-r.reclaimed() > r.cap
	var err error
	f := func() { err = r.Put(data, Try) }
	if !die {
		f()
	} else if m.dies(HookPut, 1, f) {
		m.logf("producer dies in Put of %d bytes", n)
		m.events["deaths in Put"]++
		m.prod = m.attach(0)
		return
	}
	m.logf("put %d (%d bytes): %v", seq, n, err)
	if full {
		if err != ErrFull {
			m.fatalf("Put of %d bytes with tail %d, reclaimed %d: %v; want %v", n, t, r.reclaimed(), err, ErrFull)
		}
		m.events["full"]++
		return
	}
	if err != nil {
		m.fatalf("Put of %d bytes with tail %d, reclaimed %d: %v", n, t, r.reclaimed(), err)
	}
	m.msgs = append(m.msgs, &amMsg{seq: seq, data: data})
}

// receive runs a Receive by c; with die, c dies in it if it takes a new
// message.
func (m *ackModel) receive(c *amCons, die bool) {
	s0, g0 := m.scanAt(), atomic.LoadUint64(m.prod.w.gets)
	var (
		data []byte
		d    Delivery
		err  error
	)
	t0 := time.Now().UnixNano()
	f := func() { data, d, err = c.r.Receive(nil, time.Hour, Try) }
	if die {
		if m.dies(HookReceive, 1, f) {
			m.swept(s0)
			if x := m.next(true); x != nil {
				m.fatalf("Receive died in HookReceive with message %d given back to deliver first", x.seq)
			}
			if x := m.next(false); x == nil {
				m.fatalf("Receive died in HookReceive with nothing to deliver")
			}
			if g := atomic.LoadUint64(m.prod.w.gets); g != g0 {
				m.fatalf("gets moved from %d to %d before HookReceive", g0, g)
			}
			m.logf("slot %d dies in Receive", c.slot)
			m.events["deaths in Receive"]++
			m.kill(c)
			return
		}
	} else {
		f()
	}
	m.swept(s0)
	x := m.next(false)
	held, returned := m.inFlight()
	if x != nil && x.state == amPending && held+returned >= MaxInFlight {
		x = nil
	}
	if x == nil {
		m.logf("slot %d receive: %v", c.slot, err)
		if err != ErrEmpty {
			m.fatalf("Receive with nothing to deliver: %q, %+v, %v; want %v", data, d, err, ErrEmpty)
		}
		return
	}
	count := x.count + 1
	m.logf("slot %d receive: %d, count %d, %v", c.slot, x.seq, d.Count, err)
	if err != nil || !bytes.Equal(data, x.data) || d.Count != count {
		m.fatalf("Receive: %q, %+v, %v; want message %d (%q) with count %d", data, d, err, x.seq, x.data, count)
	}
	if d.Deadline < t0+int64(time.Hour) || d.Deadline > time.Now().UnixNano()+int64(time.Hour) {
		m.fatalf("Receive with a lease of 1h: deadline %d, %v from the call", d.Deadline, time.Duration(d.Deadline-t0))
	}
	if x.state == amPending {
		m.first(x)
	} else if d.Pos != x.pos {
		m.fatalf("message %d delivered again at %d; it was at %d", x.seq, d.Pos, x.pos)
	}
	x.state, x.count, x.pos, x.holder, x.d = amHeld, count, d.Pos, c, d
}

// get runs a Get of up to max messages by c. die names the hook point at
// whose calls-th call c dies, if any.
func (m *ackModel) get(c *amCons, max int, die string, calls int) {
	s0, g0 := m.scanAt(), atomic.LoadUint64(m.prod.w.gets)
	var (
		out  []byte
		ends []int
		n    int
		err  error
	)
	f := func() { out, n, err = c.r.GetBatch(nil, &ends, max, 0, Try) }
	if die != "" {
		if m.dies(die, calls, f) {
			m.swept(s0)
			// The messages given back that it took are done (marked
			// done one by one, as it goes); so are the new ones whose
			// taking it committed (counted in gets) before it died.
			var took []int
			for range max {
				x := m.next(true)
				if x == nil || die == HookAck && len(took) == 1 {
					break
				}
				m.done(x)
				took = append(took, x.seq)
			}
			moved := int(atomic.LoadUint64(m.prod.w.gets) - g0)
			for range moved {
				x := m.next(false)
				m.first(x)
				m.done(x)
				took = append(took, x.seq)
			}
			m.logf("slot %d dies in Get(%d) at %s call %d, having taken %v", c.slot, max, die, calls, took)
			m.events["deaths in Get at "+die]++
			if moved > 0 {
				m.events["deaths in Get after a partial commit"]++
			}
			m.kill(c)
			return
		}
	} else {
		f()
	}
	m.swept(s0)
	var want []*amMsg
	for range max {
		x := m.next(false)
		if x == nil {
			break
		}
		if x.state == amPending {
			m.first(x)
		}
		m.done(x)
		want = append(want, x)
	}
	m.logf("slot %d get(%d): %d, %v", c.slot, max, n, err)
	if len(want) == 0 {
		if err != ErrEmpty || n != 0 {
			m.fatalf("Get with nothing to take: %d, %v; want %v", n, err, ErrEmpty)
		}
		return
	}
	if err != nil || n != len(want) || len(ends) != n {
		m.fatalf("Get(%d): %d messages, %d ends, %v; want %d", max, n, len(ends), err, len(want))
	}
	start := 0
	for i, x := range want {
		if got := out[start:ends[i]]; !bytes.Equal(got, x.data) {
			m.fatalf("Get(%d): message %d is %q; want message %d, %q", max, i, got, x.seq, x.data)
		}
		start = ends[i]
	}
}

// settle acks (or dead-letters), nacks or extends a held message, or, with
// die, has its holder die in its Ack.
func (m *ackModel) settle(die bool) {
	xs := m.heldAlive()
	if len(xs) == 0 {
		return
	}
	x := xs[m.rng.IntN(len(xs))]
	c, d := x.holder, x.d
	if die {
		var err error
		if !m.dies(HookAck, 1, func() { err = c.r.Ack(d) }) {
			m.fatalf("Ack of held message %d did not reach HookAck: %v", x.seq, err)
		}
		// It marked the record done: the message is done, not counted.
		m.logf("slot %d dies in Ack of %d", c.slot, x.seq)
		m.events["deaths in Ack"]++
		m.done(x)
		m.kill(c)
		return
	}
	// Another consumer cannot settle it.
	if others := m.alive(); len(others) > 1 {
		o := m.pick(others)
		if o != c {
			if err := o.r.Ack(d); err != ErrLeaseExpired {
				m.fatalf("Ack by slot %d of message %d held by slot %d: %v; want %v", o.slot, x.seq, c.slot, err, ErrLeaseExpired)
			}
		}
	}
	var err error
	switch k := m.rng.IntN(10); {
	case k < 5:
		dead := k == 0
		if dead {
			err = c.r.DeadLettered(d)
		} else {
			err = c.r.Ack(d)
		}
		m.logf("slot %d ack %d (dead %v): %v", c.slot, x.seq, dead, err)
		m.done(x)
		m.addStale(c, d)
		if dead {
			m.dead++
		} else {
			m.acks++
		}
	case k < 8:
		err = c.r.Nack(d, time.Now().UnixNano())
		m.logf("slot %d nack %d: %v", c.slot, x.seq, err)
		m.giveBack(x)
	case k < 9:
		err = c.r.Extend(d, time.Now().Add(time.Hour).UnixNano())
		m.logf("slot %d extend %d: %v", c.slot, x.seq, err)
		x.expired = false
	default:
		err = c.r.Extend(d, 1) // the lease is over: the next sweep gives it back
		m.logf("slot %d expire %d: %v", c.slot, x.seq, err)
		x.expired = true
	}
	if err != nil {
		m.fatalf("settling message %d held by slot %d: %v", x.seq, c.slot, err)
	}
}

// settleStale checks that a delivery no longer held cannot be settled.
func (m *ackModel) settleStale() {
	if len(m.stale) == 0 {
		return
	}
	s := m.stale[m.rng.IntN(len(m.stale))]
	if s.c.dead {
		return
	}
	var err error
	switch m.rng.IntN(3) {
	case 0:
		err = s.c.r.Ack(s.d)
	case 1:
		err = s.c.r.Nack(s.d, 0)
	default:
		err = s.c.r.Extend(s.d, time.Now().Add(time.Hour).UnixNano())
	}
	m.logf("slot %d settles stale %+v: %v", s.c.slot, s.d, err)
	if err != ErrLeaseExpired {
		m.fatalf("settling a delivery no longer held (%+v): %v; want %v", s.d, err, ErrLeaseExpired)
	}
}

// check compares the ring with the model. It repairs what a dead consumer
// left first (Counts takes its lock over).
func (m *ackModel) check() {
	pending, held, returned, free, head, tail := m.checkCounts()
	m.checkBelowHead(free, head, held+returned)
	m.checkAboveHead(head, tail, pending)
	m.checkEntries(free, head, held+returned)
	checkGuard(m.t, m.mem)
}

// checkCounts checks the counters against the model, and returns the
// model's pending, held and given-back messages and the ring's positions.
func (m *ackModel) checkCounts() (pending, held, returned int, free, head, tail uint64) {
	r := m.prod
	c, err := r.Counts()
	if err != nil {
		m.fatalf("Counts: %v", err)
	}
	if v := atomic.LoadUint32(r.w.consLock); v != 0 || atomic.LoadUint32(r.w.repair) != 0 {
		m.fatalf("consumer lock %#x, repair %d after Counts", v, atomic.LoadUint32(r.w.repair))
	}
	held, returned = m.inFlight()
	for _, x := range m.msgs {
		if x.state == amPending {
			pending++
		}
	}
	want := Counts{Puts: uint64(len(m.msgs)), Gets: m.gets, Acks: m.acks, Redelivered: m.redeliv, Dead: m.dead,
		Len: uint64(pending + returned), InFlight: uint64(held + returned)}
	got := c
	got.Waits, got.Recovered, got.Used, got.Torn, got.Sealed = 0, 0, 0, 0, false
	if got != want {
		m.fatalf("Counts %+v; want %+v", got, want)
	}
	free, head, tail = r.reclaimed(), atomic.LoadUint64(r.w.head), atomic.LoadUint64(r.w.tail)
	if free > head || head > tail || tail-free > r.cap {
		m.fatalf("reclaimed %d, head %d, tail %d", free, head, tail)
	}
	if c.Used != tail-free {
		m.fatalf("Used %d; tail %d - reclaimed %d", c.Used, tail, free)
	}
	return pending, held, returned, free, head, tail
}

// checkBelowHead checks the records between free and head: inFlight
// deliveries held or given back.
func (m *ackModel) checkBelowHead(free, head uint64, inFlight int) {
	r := m.prod
	// Below head: taken records (each with its entry), done ones and
	// padding; the first non-padding record at the reclaim position is
	// taken (reclaim does not stop short).
	taken, first := 0, true
	m.records("reclaimed", free, "head", head, func(p, h uint64) {
		switch headerState(h) {
		case stateTaken:
			i := headerIdx(h)
			if st := r.entState(i); (st != entHeld && st != entReturned) || atomic.LoadUint64(entU64(r.mem, i, entPos)) != p {
				m.fatalf("record at %d names delivery %d, in state %d at %d", p, i, st, atomic.LoadUint64(entU64(r.mem, i, entPos)))
			}
			taken++
			first = false
		case stateDone:
			if first {
				m.fatalf("done record at the reclaim position %d (head %d)", p, head)
			}
		case statePad:
		default:
			m.fatalf("record at %d below head %d in state %d", p, head, headerState(h))
		}
	})
	if taken != inFlight {
		m.fatalf("%d taken records; %d held or given back", taken, inFlight)
	}
}

// checkAboveHead checks that the records between head and tail are the
// pending messages.
func (m *ackModel) checkAboveHead(head, tail uint64, pending int) {
	ready := 0
	m.records("head", head, "tail", tail, func(p, h uint64) {
		switch headerState(h) {
		case stateReady:
			ready++
		case statePad:
		default:
			m.fatalf("record at %d above head %d in state %d", p, head, headerState(h))
		}
	})
	if ready != pending {
		m.fatalf("%d ready records above head; %d messages pending", ready, pending)
	}
}

// records calls f with the position and header of each record from lo to
// hi (the positions named loName and hiName), failing on one that does not
// check.
func (m *ackModel) records(loName string, lo uint64, hiName string, hi uint64, f func(p, h uint64)) {
	for p := lo; p < hi; {
		h, size, err := m.prod.record(p, hi)
		if err != nil {
			m.fatalf("record at %d between %s %d and %s %d: %v", p, loName, lo, hiName, hi, err)
		}
		f(p, h)
		p += size
	}
}

// checkEntries checks the deliveries table against the model's inFlight
// messages, which lie between free and head.
func (m *ackModel) checkEntries(free, head uint64, inFlight int) {
	r := m.prod
	inUse := 0
	for i := uint32(0); i < MaxInFlight; i++ {
		if r.entState(i) != entFree {
			inUse++
		}
	}
	if inUse != inFlight || atomic.LoadUint32(r.w.inFlight) != uint32(inUse) {
		m.fatalf("%d entries in use, in-flight word %d; want %d", inUse, atomic.LoadUint32(r.w.inFlight), inFlight)
	}
	for _, x := range m.msgs {
		if x.state != amHeld && x.state != amReturned {
			continue
		}
		i := x.d.Idx
		if x.pos < free || x.pos >= head {
			m.fatalf("message %d (%v) at %d outside reclaimed %d .. head %d", x.seq, x.state, x.pos, free, head)
		}
		st, pos := r.entState(i), atomic.LoadUint64(entU64(r.mem, i, entPos))
		if pos != x.pos || x.state == amHeld && st != entHeld || x.state == amReturned && st != entReturned {
			m.fatalf("message %d (%v) at %d: entry %d in state %d at %d", x.seq, x.state, x.pos, i, st, pos)
		}
		if x.state == amHeld && (atomic.LoadUint32(entU32(r.mem, i, entToken)) != x.d.Token ||
			atomic.LoadUint32(entU32(r.mem, i, entOwner)) != x.holder.r.self) {
			m.fatalf("message %d held by slot %d: entry %d has another token or owner", x.seq, x.holder.slot, i)
		}
		if x.state == amReturned && atomic.LoadUint32(entU32(r.mem, i, entCount)) != x.count {
			m.fatalf("message %d given back after %d deliveries: entry count %d", x.seq, x.count, atomic.LoadUint32(entU32(r.mem, i, entCount)))
		}
	}
}

// step runs one random operation.
func (m *ackModel) step() {
	if m.rng.IntN(8) == 0 {
		m.revive()
	}
	cs := m.alive()
	if len(cs) == 0 {
		m.revive()
		cs = m.alive()
	}
	c := m.pick(cs)
	batch := 1 + m.rng.IntN(4)
	if m.rng.IntN(4) == 0 {
		batch = 1 + m.rng.IntN(24) // large enough to be committed in parts
	}
	if m.rng.IntN(20) == 0 {
		// Time passes: the next Receive sweeps.
		atomic.AddInt64(m.prod.w.scanAt, -int64(sweepEvery))
	}
	// Phases of more puts (the ring fills) and of fewer (it drains).
	if m.rng.IntN(200) == 0 {
		m.filling = !m.filling
	}
	if m.filling && m.rng.IntN(2) == 0 {
		m.put(false)
		return
	}
	k := m.rng.IntN(100)
	if !testHooks && k >= 90 {
		k = m.rng.IntN(90) // no deaths inside an operation without the hooks
	}
	switch {
	case k < 30:
		m.put(false)
	case k < 40:
		m.get(c, batch, "", 0)
	case k < 62:
		m.receive(c, false)
	case k < 82:
		m.settle(false)
	case k < 86:
		m.settleStale()
	case k < 88:
		s0 := m.scanAt()
		if err := c.r.Sweep(); err != nil {
			m.fatalf("Sweep: %v", err)
		}
		m.logf("slot %d sweeps", c.slot)
		if m.scanAt() != s0 {
			m.sweep()
		}
	case k < 90:
		m.logf("slot %d dies holding %d", c.slot, len(m.heldAlive()))
		m.events["deaths holding deliveries"]++
		m.kill(c)
	case k < 92:
		m.receive(c, true)
	case k < 94:
		m.settle(true)
	case k < 96:
		m.get(c, batch, HookGet, 1+m.rng.IntN(batch))
	case k < 98:
		m.get(c, batch, HookAck, 1)
	default:
		m.put(true)
	}
	// Check now and then with a dead consumer's repair still to do (Counts
	// does it), and otherwise leave it to the next operation.
	if atomic.LoadUint32(m.prod.w.consLock) == 0 || m.rng.IntN(2) == 0 {
		m.check()
	}
}

// finish settles everything and checks that every message was done once.
func (m *ackModel) finish() {
	for len(m.alive()) < len(m.cons) {
		m.revive()
	}
	c := m.cons[0]
	if err := c.r.Sweep(); err != nil {
		m.fatalf("Sweep: %v", err)
	}
	m.sweep()
	for _, x := range m.heldAlive() {
		if err := x.holder.r.Ack(x.d); err != nil {
			m.fatalf("final Ack of %d: %v", x.seq, err)
		}
		m.done(x)
		m.acks++
	}
	for {
		m.get(c, 4, "", 0)
		if m.next(false) == nil {
			break
		}
	}
	m.get(c, 1, "", 0) // ErrEmpty
	m.check()
	for _, x := range m.msgs {
		if x.state != amDone {
			m.fatalf("message %d left %v", x.seq, x.state)
		}
	}
	if err := m.prod.Seal(); err != nil {
		m.fatalf("Seal: %v", err)
	}
	if _, _, err := c.r.Receive(nil, time.Hour, Try); err != io.EOF {
		m.fatalf("Receive of a sealed, drained queue: %v; want io.EOF", err)
	}
	if _, err := c.r.Get(nil, Try); err != io.EOF {
		m.fatalf("Get of a sealed, drained queue: %v; want io.EOF", err)
	}
	if cnt := counts(m.t, c.r); cnt.Len != 0 || cnt.InFlight != 0 || cnt.Used != 0 {
		m.fatalf("Counts at the end: %+v", cnt)
	}
}

func TestAckModel(t *testing.T) {
	seeds, steps := 12, 2500
	if testing.Short() {
		seeds = 3
	}
	base := uint64(time.Now().UnixNano())
	for i := range seeds {
		seed := uint64(i + 1) // fixed seeds, then varying ones
		if i >= seeds/2 {
			seed = base + uint64(i)
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := newAckModel(t, seed)
			defer setTestHook(m.hook)()
			for range steps {
				m.step()
			}
			m.finish()
			c := counts(t, m.prod)
			t.Logf("%d messages, %d acks, %d redelivered, %d dead-lettered, %d locks recovered; %v", len(m.msgs), c.Acks, c.Redelivered, c.Dead, c.Recovered, m.events)
		})
	}
}

// TestAckConcurrent runs a producer and consumers on goroutines of their
// own, each attached as a process of its own: consumers Get, Receive with
// short leases (which expire under them), Ack, Nack and Extend, and now and
// then die in the middle of an operation (stopped by TestHook, in builds
// with the tag mpqhooks) or just stop holding deliveries, to be replaced by
// a new process in their slot. Every message must be consumed (returned by
// Get, or acked with success) exactly once, except those taken by a
// consumer that died inside Get.
func TestAckConcurrent(t *testing.T) {
	const consumers = 4
	a := &ackRun{
		mem: newMem(t, 1<<14, 64), env: newEnv(),
		errs: make(chan error, consumers+1),
	}
	defer setTestHook(func(p string) {
		if i := a.armed.Load(); i != 0 && ackPoints[i] == p && a.armed.CompareAndSwap(i, 0) {
			panic(hookDeath{p})
		}
	})()
	var wg sync.WaitGroup
	wg.Go(a.produce)
	for i := range consumers {
		wg.Go(func() { a.consumer(1 + i) })
	}
	a.supervise(t, &wg)
	zero := 0
	for i := range a.consumed {
		if a.consumed[i].Load() == 0 {
			zero++
		}
	}
	if zero != int(a.lost.Load()) {
		t.Errorf("%d messages never consumed; %d taken by consumers that died inside Get", zero, a.lost.Load())
	}
	c := counts(t, a.attach(200))
	if c.Len != 0 || c.InFlight != 0 || c.Used != 0 || c.Puts != ackTotal || c.Gets != ackTotal {
		t.Errorf("Counts at the end: %+v", c)
	}
	var d []int32
	for i := range a.deaths {
		d = append(d, a.deaths[i].Load())
	}
	t.Logf("deaths (plain, put, get, receive, ack): %v; %d settlements after a lease expired; %d lost in Get; %+v", d, a.expiredAcks.Load(), a.lost.Load(), c)
	checkGuard(t, a.mem)
}

// ackTotal is the number of messages TestAckConcurrent puts.
const ackTotal = 3000

// ackPoints are where TestAckConcurrent's processes die: "" is a death
// outside any operation.
var ackPoints = []string{"", HookPut, HookGet, HookReceive, HookAck}

// An ackRun is the shared state of TestAckConcurrent.
type ackRun struct {
	mem         []byte
	env         *fakeEnv
	armed       atomic.Int32 // index in ackPoints of the next death, 0 for none
	consumed    [ackTotal]atomic.Int32
	lost        atomic.Int32    // consumed by a consumer that died inside Get
	finished    atomic.Int32    // consumed messages (lost included)
	deaths      [5]atomic.Int32 // by index in ackPoints
	expiredAcks atomic.Int32
	stopping    atomic.Bool // set to end the test early
	errs        chan error
}

// attach attaches a process in slot.
func (a *ackRun) attach(slot int) *Ring {
	r, err := Attach(a.mem, int64(len(a.mem)), a.env, slot, 1000+slot)
	if err != nil {
		panic(err)
	}
	a.env.set(slot, true)
	return r
}

// try runs f, reporting a death in a hook.
func (a *ackRun) try(f func()) (died string) {
	defer func() {
		if e := recover(); e != nil {
			h, ok := e.(hookDeath)
			if !ok {
				panic(e)
			}
			died = h.point
		}
	}()
	f()
	return ""
}

// stopped reports whether the test is over.
func (a *ackRun) stopped() bool { return a.stopping.Load() }

// consume counts message seq consumed, which it must be once only.
func (a *ackRun) consume(seq int) error {
	if n := a.consumed[seq].Add(1); n > 1 {
		return fmt.Errorf("message %d consumed %d times", seq, n)
	}
	a.finished.Add(1)
	return nil
}

// parse checks a message the producer made and returns its seq.
func (a *ackRun) parse(m []byte) (int, error) {
	if len(m) < 4 {
		return 0, fmt.Errorf("message of %d bytes", len(m))
	}
	seq := int(binary.LittleEndian.Uint32(m))
	for i, b := range m[4:] {
		if b != byte(seq+i) {
			return 0, fmt.Errorf("message %d damaged at %d", seq, i)
		}
	}
	if seq >= ackTotal {
		return 0, fmt.Errorf("message %d of %d", seq, ackTotal)
	}
	return seq, nil
}

// produce puts the messages from slot 0, attaching again after each death.
func (a *ackRun) produce() {
	r := a.attach(0)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for seq := 0; seq < ackTotal && !a.stopped(); {
		msg := make([]byte, 4+rng.IntN(60))
		binary.LittleEndian.PutUint32(msg, uint32(seq))
		for i := range msg[4:] {
			msg[4+i] = byte(seq + i)
		}
		var err error
		if p := a.try(func() { err = r.Put(msg, Try) }); p != "" {
			a.deaths[1].Add(1)
			r = a.attach(0)
			continue
		}
		switch err {
		case nil:
			seq++
		case ErrFull, ErrBusy:
			runtime.Gosched()
		default:
			a.errs <- fmt.Errorf("Put: %w", err)
			return
		}
	}
}

// An ackConsumer is one consumer of TestAckConcurrent: a process in slot
// and the deliveries it holds.
type ackConsumer struct {
	*ackRun
	slot    int
	r       *Ring
	rng     *rand.Rand
	held    []Delivery
	heldSeq []int
}

// consumer runs a consumer in slot until every message is consumed: each
// step Gets, Receives, settles one delivery or stops holding what it holds,
// and returns an error to end the test with, or nil.
func (a *ackRun) consumer(slot int) {
	c := &ackConsumer{ackRun: a, slot: slot, r: a.attach(slot), rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(slot)))}
	for a.finished.Load() < ackTotal && !a.stopped() {
		var err error
		switch k := c.rng.IntN(10); {
		case k < 2:
			err = c.get()
		case k < 5 && len(c.held) < 3:
			err = c.receive()
		case k < 9 && len(c.held) > 0:
			err = c.settle()
		case k == 9 && c.rng.IntN(20) == 0: // stop, holding what it holds
			c.die("")
		}
		if err != nil {
			a.errs <- fmt.Errorf("slot %d: %w", slot, err)
			return
		}
	}
}

// die counts a death at point and attaches a new process in the slot.
func (c *ackConsumer) die(point string) {
	c.deaths[slices.Index(ackPoints, point)].Add(1)
	c.held, c.heldSeq = nil, nil
	c.r = c.attach(c.slot)
}

// get takes one message with Get.
func (c *ackConsumer) get() error {
	seq, died, err := c.take("Get", func() ([]byte, error) { return c.r.Get(nil, Try) })
	if died != "" {
		if died == HookAck { // it marked a message given back done
			c.lost.Add(1)
			c.finished.Add(1)
		}
		c.die(died)
		return nil
	}
	if err != nil || seq < 0 {
		return err
	}
	return c.consume(seq)
}

// receive holds one more message, with a lease that may end soon.
func (c *ackConsumer) receive() error {
	lease := time.Hour
	if c.rng.IntN(2) == 0 {
		lease = time.Duration(1+c.rng.IntN(5)) * time.Millisecond
	}
	var d Delivery
	seq, died, err := c.take("Receive", func() (out []byte, err error) {
		out, d, err = c.r.Receive(nil, lease, Try)
		return out, err
	})
	if died != "" {
		c.die(died)
		return nil
	}
	if err != nil || seq < 0 {
		return err
	}
	c.held, c.heldSeq = append(c.held, d), append(c.heldSeq, seq)
	return nil
}

// take runs op, the operation what that takes a message, and returns the
// message's seq, or -1 if there was none to take; died is the hook point
// the process died at inside op.
func (c *ackConsumer) take(what string, op func() ([]byte, error)) (seq int, died string, err error) {
	var out []byte
	if p := c.try(func() { out, err = op() }); p != "" {
		return -1, p, nil
	}
	if err == ErrEmpty || err == ErrBusy {
		runtime.Gosched()
		return -1, "", nil
	}
	if err != nil {
		return -1, "", fmt.Errorf("%s: %v", what, err)
	}
	seq, err = c.parse(out)
	return seq, "", err
}

// settle Nacks, Extends or Acks one of the deliveries held.
func (c *ackConsumer) settle() error {
	j := c.rng.IntN(len(c.held))
	d, seq := c.held[j], c.heldSeq[j]
	c.held, c.heldSeq = append(c.held[:j], c.held[j+1:]...), append(c.heldSeq[:j], c.heldSeq[j+1:]...)
	if c.rng.IntN(3) == 0 {
		time.Sleep(time.Duration(c.rng.IntN(3)) * time.Millisecond)
	}
	var err error
	acking := false
	p := c.try(func() {
		switch c.rng.IntN(6) {
		case 0:
			err = c.r.Nack(d, time.Now().UnixNano())
		case 1:
			if err = c.r.Extend(d, time.Now().Add(time.Hour).UnixNano()); err == nil {
				c.held, c.heldSeq = append(c.held, d), append(c.heldSeq, seq)
			}
		default:
			acking = true
			err = c.r.Ack(d)
		}
	})
	if p != "" { // died in Ack, the record marked done: consumed
		if err := c.consume(seq); err != nil {
			return err
		}
		c.die(p)
		return nil
	}
	switch {
	case err == ErrLeaseExpired:
		c.expiredAcks.Add(1)
	case err != nil:
		return fmt.Errorf("settle %d: %v", seq, err)
	case acking:
		return c.consume(seq)
	}
	return nil
}

// supervise arms a death every few milliseconds until the goroutines of wg
// are done, and fails t on the first error or after a time limit.
func (a *ackRun) supervise(t *testing.T, wg *sync.WaitGroup) {
	const timeLimit = 20 * time.Second
	deadline := time.After(timeLimit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			a.armed.Store(0)
			select {
			case err := <-a.errs:
				t.Fatal(err)
			default:
			}
			return
		case err := <-a.errs:
			a.stopping.Store(true)
			<-done
			t.Fatal(err)
		case <-deadline:
			a.stopping.Store(true)
			<-done
			c, _ := a.attach(200).Counts()
			t.Fatalf("after %v: %d of %d messages consumed; %+v", timeLimit, a.finished.Load(), ackTotal, c)
		case <-tick.C:
			a.armed.CompareAndSwap(0, int32(1+rand.IntN(len(ackPoints)-1)))
		}
	}
}

// Package ring implements the record format and the put/get protocol of an mpq
// queue over a plain []byte. It makes no system calls: the caller supplies
// the memory (a shared mapping, or a heap slice in tests) and an [Env] that
// says whether another process is still attached.
//
// # Protocol
//
// Positions (tail and head) are 64-bit byte offsets that never wrap; a
// record lives at index pos & (capacity-1). A record is an 8-byte header
// (length and state) and its payload, padded to 8 bytes. A record that
// would cross the end of the ring is preceded by a padding record filling the
// rest of it.
//
// Producers serialize on the producer lock, consumers on the consumer lock.
// Each lock word holds the ref (slot and generation) of its holder, so a
// holder that dies can be found dead through [Env.Held] and its lock taken
// over. Everything a holder does is invisible until its final store:
//
//   - Put copies the payload and header into free space above tail, then
//     stores puts and tail. A producer killed before the tail store leaves
//     bytes nobody reads; nothing partial is ever delivered.
//   - Get copies the payload at head out, then stores gets and head. A
//     consumer killed before the head store leaves the message in place for
//     the next consumer.
//
// A process that takes over a dead holder's lock sets the recount flag, and
// the puts/gets counters are recomputed from the records the next time they
// are read.
//
// Every value read from the memory is validated before use; inconsistent
// values yield [ErrCorrupt].
package ring

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Env connects a Ring to the processes sharing its memory.
type Env interface {
	// Held reports whether some process other than the caller holds the
	// liveness lock of the slot.
	Held(slot int) bool
	// Yield gives the processor to another thread while spinning on a lock.
	Yield()
	// Wake wakes every process sleeping on the futex word at addr and
	// returns how many it woke.
	Wake(addr *uint32) int
}

// Geometry is what a queue file records about its shape.
type Geometry struct {
	Capacity      uint64 // ring bytes, a power of two
	MaxMessage    uint64 // largest payload
	Created       time.Time
	Durable       bool   // records carry a CRC32C; recovery runs at open
	MaxDeliveries uint32 // deliveries by Receive before a message is dead-lettered; 0 = no limit
	DeadLetter    string // name of the dead-letter queue; "" = drop
	// LockFile says that the processes attached to the queue hold their
	// liveness locks in a lock file beside it, which only the queue's
	// writers can open, rather than in the queue file, which a process
	// that may only read it could lock too.
	LockFile bool
	// LockID tells this queue's lock file from those of earlier queues of
	// the same name: random, and not 0, if LockFile is set.
	LockID uint32
}

// Validate checks g for a new queue.
func (g Geometry) Validate() error {
	if g.Capacity < MinCapacity || g.Capacity > MaxCapacity || g.Capacity&(g.Capacity-1) != 0 {
		return fmt.Errorf("capacity %d is not a power of two in [%d, %d]", g.Capacity, MinCapacity, uint64(MaxCapacity))
	}
	if m := MaxMessageFor(g.Capacity, g.Durable); g.MaxMessage == 0 || g.MaxMessage > m {
		return fmt.Errorf("maximum message size %d over %d, the most a ring of %d bytes takes", g.MaxMessage, m, g.Capacity)
	}
	if g.LockFile != (g.LockID != 0) {
		return fmt.Errorf("lock file flag %v with lock id %#x", g.LockFile, g.LockID)
	}
	if len(g.DeadLetter) > MaxDeadLetterName {
		return fmt.Errorf("dead-letter queue name of %d bytes, at most %d", len(g.DeadLetter), MaxDeadLetterName)
	}
	return nil
}

// MaxMessageFor is the largest maximum message size a ring of capacity bytes
// accepts: a record of it must fit an empty ring wherever its positions
// stand, which, with the padding that skips the end of the ring, means in
// half of it.
func MaxMessageFor(capacity uint64, durable bool) uint64 {
	h := uint64(HeaderBytes)
	if durable {
		h = DurableHeaderBytes
	}
	return min(capacity/2-h, 1<<32-1)
}

// Init formats mem as an empty queue. len(mem) must be at least MinSize(g.Capacity).
func Init(mem []byte, g Geometry) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if uint64(len(mem)) < RingOffset+g.Capacity {
		return fmt.Errorf("memory of %d bytes is too small for a ring of %d", len(mem), g.Capacity)
	}
	clear(mem[:RingOffset])
	binary.NativeEndian.PutUint32(mem[offVersion:], Version)
	binary.NativeEndian.PutUint32(mem[offByteOrder:], byteOrderMark)
	binary.NativeEndian.PutUint64(mem[offCapacity:], g.Capacity)
	binary.NativeEndian.PutUint64(mem[offMaxMsg:], g.MaxMessage)
	binary.NativeEndian.PutUint32(mem[offRingOff:], RingOffset)
	binary.NativeEndian.PutUint32(mem[offMaxProcs:], MaxProcs)
	if !g.Created.IsZero() {
		binary.NativeEndian.PutUint64(mem[offCreated:], uint64(g.Created.UnixNano()))
	}
	var flags uint32
	if g.Durable {
		flags |= FlagDurable
	}
	if g.LockFile {
		flags |= FlagLockFile
	}
	binary.NativeEndian.PutUint32(mem[offFlags:], flags)
	binary.NativeEndian.PutUint32(mem[offLockID:], g.LockID)
	binary.NativeEndian.PutUint32(mem[offMaxDeliv:], g.MaxDeliveries)
	mem[offDeadName] = byte(len(g.DeadLetter))
	copy(mem[offDeadName+1:], g.DeadLetter)
	copy(mem[offMagic:], Magic)
	binary.NativeEndian.PutUint32(mem[offIdentCRC:], identityCRC(mem))
	return nil
}

// identityCRC is the checksum of the words written once at creation: damage
// to them (a capacity, the durable flag) would otherwise pass for a queue of
// another shape.
func identityCRC(mem []byte) uint32 {
	c := crc32.Update(0, castagnoli, mem[:offIdentCRC])
	return crc32.Update(c, castagnoli, mem[offDeadName:offDeadName+1+MaxDeadLetterName])
}

// ReadGeometry validates the identity part of a queue header. size is the
// size of the underlying file, which must hold the whole ring.
func ReadGeometry(mem []byte, size int64) (Geometry, error) {
	g, err := ReadHeader(mem)
	if err != nil {
		return g, err
	}
	if size < MinSize(g.Capacity) {
		return g, fmt.Errorf("%w: file is %d bytes, its ring needs %d", ErrCorrupt, size, MinSize(g.Capacity))
	}
	return g, nil
}

// ReadHeader validates the identity part of a queue header, which is all
// mem needs to hold.
func ReadHeader(mem []byte) (Geometry, error) {
	var g Geometry
	if len(mem) < PageSize || !bytes.Equal(mem[:len(Magic)], []byte(Magic)) {
		return g, fmt.Errorf("%w: no queue header", ErrIncompatible)
	}
	if v := binary.NativeEndian.Uint32(mem[offVersion:]); v != Version {
		return g, fmt.Errorf("%w: format version %d, this build reads %d", ErrIncompatible, v, Version)
	}
	if binary.NativeEndian.Uint32(mem[offByteOrder:]) != byteOrderMark {
		return g, fmt.Errorf("%w: written on a machine of another byte order", ErrIncompatible)
	}
	g.Capacity = binary.NativeEndian.Uint64(mem[offCapacity:])
	g.MaxMessage = binary.NativeEndian.Uint64(mem[offMaxMsg:])
	g.Created = time.Unix(0, int64(binary.NativeEndian.Uint64(mem[offCreated:])))
	flags := binary.NativeEndian.Uint32(mem[offFlags:])
	if flags&^(FlagDurable|FlagLockFile) != 0 {
		return g, fmt.Errorf("%w: unknown flags %#x", ErrIncompatible, flags)
	}
	if binary.NativeEndian.Uint32(mem[offIdentCRC:]) != identityCRC(mem) {
		return g, fmt.Errorf("%w: header checksum does not match", ErrCorrupt)
	}
	g.Durable = flags&FlagDurable != 0
	g.LockFile = flags&FlagLockFile != 0
	g.LockID = binary.NativeEndian.Uint32(mem[offLockID:])
	g.MaxDeliveries = binary.NativeEndian.Uint32(mem[offMaxDeliv:])
	name := mem[offDeadName+1 : offDeadName+1+int(mem[offDeadName])]
	if bytes.ContainsAny(name, "/\x00") {
		return g, fmt.Errorf("%w: dead-letter queue name %q", ErrCorrupt, name)
	}
	g.DeadLetter = string(name)
	if err := g.Validate(); err != nil {
		return g, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if binary.NativeEndian.Uint32(mem[offRingOff:]) != RingOffset || binary.NativeEndian.Uint32(mem[offMaxProcs:]) != MaxProcs {
		return g, fmt.Errorf("%w: unexpected table layout", ErrCorrupt)
	}
	return g, nil
}

// Ring is one process's view of a queue. Its methods are safe for concurrent
// use; goroutines of one process first serialize on a local mutex, so only
// one goroutine per process ever spins on a shared lock.
type Ring struct {
	mem     []byte
	data    []byte
	w       words
	cap     uint64
	mask    uint64
	maxM    uint64
	hdr     uint64 // bytes of a record header
	algn    uint64 // record alignment
	geo     Geometry
	created time.Time
	env     Env
	slot    int
	self    uint32
	roles   atomic.Uint32

	pmu       sync.Mutex
	freeCache uint64 // under pmu: free as producers last read it
	cmu       sync.Mutex
	tailCache uint64 // under cmu
	entHint   uint32 // under cmu: where to look for a free entry first
	closed    atomic.Bool
	closing   atomic.Bool
	fault     atomic.Pointer[faultError] // set once the memory faulted
	// cannotFault: the hot path needs no guard (see CannotFault).
	cannotFault bool
	lastSweep   atomic.Int64
}

// checkMapping validates mem, a mapping of a queue file of size bytes, and
// returns the geometry its header records.
func checkMapping(mem []byte, size int64) (Geometry, error) {
	g, err := ReadGeometry(mem, size)
	if err != nil {
		return g, err
	}
	if uint64(len(mem)) < RingOffset+g.Capacity {
		return g, fmt.Errorf("%w: mapping of %d bytes is smaller than the ring", ErrCorrupt, len(mem))
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return g, fmt.Errorf("ring memory is not 8-byte aligned")
	}
	return g, nil
}

// Attach validates mem and attaches through slot, whose liveness lock the
// caller already holds. pid is recorded for diagnostics.
func Attach(mem []byte, size int64, env Env, slot int, pid int) (*Ring, error) {
	g, err := checkMapping(mem, size)
	if err != nil {
		return nil, err
	}
	if slot < 0 || slot >= MaxProcs {
		return nil, fmt.Errorf("slot %d out of range", slot)
	}
	r := &Ring{
		mem: mem, data: mem[RingOffset : RingOffset+g.Capacity], w: wordsOf(mem),
		cap: g.Capacity, mask: g.Capacity - 1, maxM: g.MaxMessage, created: g.Created,
		env: env, slot: slot, hdr: HeaderBytes, algn: RecordAlign, geo: g,
	}
	if g.Durable {
		r.hdr, r.algn = DurableHeaderBytes, DurableHeaderBytes
	}
	gen := atomic.AddUint32(slotU32(mem, slot, slotGen), 1) & genMask
	for gen == 0 {
		gen = atomic.AddUint32(slotU32(mem, slot, slotGen), 1) & genMask
	}
	r.self = makeRef(slot, gen)
	atomic.StoreUint32(slotU32(mem, slot, slotPID), uint32(pid))
	atomic.StoreInt64(slotI64(mem, slot, slotSince), time.Now().UnixNano())
	atomic.StoreUint32(slotU32(mem, slot, slotRole), 0)
	bit := uint64(1) << (slot % 64)
	atomic.AndUint64(&r.w.dataMask[slot/64], ^bit)
	atomic.AndUint64(&r.w.spaceMask[slot/64], ^bit)
	r.freeCache = r.reclaimed()
	r.tailCache = atomic.LoadUint64(r.w.head)
	return r, nil
}

// Geometry returns what the queue file records about its shape.
func (r *Ring) Geometry() Geometry { return r.geo }

// Capacity returns the ring's capacity in bytes.
func (r *Ring) Capacity() uint64 { return r.cap }

// MaxMessage returns the largest message the ring takes.
func (r *Ring) MaxMessage() uint64 { return r.maxM }

// Self returns this process's ref: its slot and generation.
func (r *Ring) Self() uint32 { return r.self }

// Created is when the queue file was created.
func (r *Ring) Created() time.Time { return r.created }

// DataSeq returns the futex word consumers waiting for data sleep on.
func (r *Ring) DataSeq() *uint32 { return r.w.dataSeq }

// SpaceSeq returns the futex word producers waiting for space sleep on.
func (r *Ring) SpaceSeq() *uint32 { return r.w.spaceSeq }

// alive reports whether the process named by ref is still attached.
func (r *Ring) alive(ref uint32) bool {
	slot := refSlot(ref)
	if atomic.LoadUint32(slotU32(r.mem, slot, slotGen))&genMask != refGen(ref) {
		return false
	}
	if slot == r.slot {
		return true
	}
	return r.env.Held(slot)
}

// Close marks the ring closed once no goroutine of this process is inside a
// put or get, then runs release (which typically unmaps the memory). Later
// calls return ErrClosed.
func (r *Ring) Close(release func()) error {
	r.closing.Store(true) // lets a goroutine waiting on a stuck lock holder give up
	r.pmu.Lock()
	defer r.pmu.Unlock()
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if r.closed.Swap(true) {
		return ErrClosed
	}
	r.clearWaiterBits()
	r.clearPID()
	if release != nil {
		release()
	}
	return nil
}

// clearWaiterBits clears this process's waiter bits, which would make
// producers wake nobody forever; a faulted mapping keeps them.
func (r *Ring) clearWaiterBits() {
	defer r.guard(nil, debug.SetPanicOnFault(true), nil, nil)
	bit := uint64(1) << (r.slot % 64)
	atomic.AndUint64(&r.w.dataMask[r.slot/64], ^bit)
	atomic.AndUint64(&r.w.spaceMask[r.slot/64], ^bit)
}

// clearPID records in this process's slot that it closed the queue: a
// slot that still names a pid is of a process that is attached or died
// attached (see Recorded).
func (r *Ring) clearPID() {
	defer r.guard(nil, debug.SetPanicOnFault(true), nil, nil)
	atomic.StoreUint32(slotU32(r.mem, r.slot, slotPID), 0)
}

// Closed reports whether Close has been called.
func (r *Ring) Closed() bool { return r.closed.Load() }

func (r *Ring) setRole(role uint32) {
	if r.roles.Load()&role == 0 {
		r.roles.Or(role)
		atomic.OrUint32(slotU32(r.mem, r.slot, slotRole), role)
	}
}

// Seal forbids further puts. It takes the producer lock so that a put either
// completes before the seal or fails with ErrSealed: it waits for a put in
// progress in another process, and takes the lock over if that one died.
func (r *Ring) Seal() (err error) {
	r.pmu.Lock()
	if r.cannotFault {
		defer r.pmu.Unlock()
	} else {
		defer r.unlockGuard(&r.pmu, &err, debug.SetPanicOnFault(true), r.w.prodLock)
	}
	if err := r.usable(); err != nil {
		return err
	}
	if err := r.lock(r.w.prodLock, Block(nil)); err != nil {
		return r.fail(err)
	}
	if s := atomic.LoadUint32(r.w.sealed); s&^sealedBit != 0 {
		atomic.StoreUint32(r.w.prodLock, 0)
		return r.stop(s)
	}
	atomic.OrUint32(r.w.sealed, sealedBit)
	atomic.StoreUint32(r.w.prodLock, 0)
	r.bump(r.w.dataSeq)
	r.bump(r.w.spaceSeq)
	return nil
}

// Direction names what a waiter waits for: data to get, or space to put.
type Direction uint8

const (
	ForData  Direction = iota // a consumer waits for a message
	ForSpace                  // a producer waits for room
)

// wake wakes the processes sleeping in direction d, if any. It runs while
// the caller holds the local mutex, so the mapping cannot go away.
func (r *Ring) wake(d Direction) {
	if !r.HasWaiters(d) {
		return
	}
	w := r.w.dataSeq
	if d == ForSpace {
		w = r.w.spaceSeq
	}
	if r.bump(w) == 0 {
		// Nobody was asleep: perhaps a waiter died with its bit set.
		now := time.Now().UnixNano()
		if last := r.lastSweep.Load(); now-last > int64(10*time.Millisecond) && r.lastSweep.CompareAndSwap(last, now) {
			r.SweepWaiters()
		}
	}
}

func (r *Ring) bump(w *uint32) int {
	atomic.AddUint32(w, 1)
	return r.env.Wake(w)
}

// Sealed reports whether the queue is sealed.
func (r *Ring) Sealed() bool { return atomic.LoadUint32(r.w.sealed)&sealedBit != 0 }

// checkSpan validates a pair of positions read from shared memory: lo <= hi,
// both aligned, at most a ring apart.
func (r *Ring) checkSpan(what string, lo, hi uint64) error {
	if lo > hi || hi-lo > r.cap || (lo|hi)&(r.algn-1) != 0 {
		return corrupt("%s positions %d..%d inconsistent with capacity %d", what, lo, hi, r.cap)
	}
	return nil
}

// record reads and validates the record header at position pos, which lies
// below limit. It returns the header and the record's size in the ring.
func (r *Ring) record(pos, limit uint64) (uint64, uint64, error) {
	idx := pos & r.mask
	h := loadHeader(r.data, idx)
	n := headerLen(h)
	size := r.hdr + r.alignUp(n)
	switch st := headerState(h); st {
	case stateReady, stateTaken, stateDone:
		if n > r.maxM {
			return 0, 0, corrupt("record at %d has length %d over the maximum %d", pos, n, r.maxM)
		}
		if st != stateTaken && headerIdx(h) != 0 || st == stateTaken && headerIdx(h) >= MaxInFlight {
			return 0, 0, corrupt("record at %d has header %#x", pos, h)
		}
	case statePad:
		if headerIdx(h) != 0 {
			return 0, 0, corrupt("record at %d has header %#x", pos, h)
		}
	default:
		return 0, 0, corrupt("record at %d has state %d", pos, headerState(h))
	}
	if idx+size > r.cap || pos > limit || size > limit-pos || pos&(r.algn-1) != 0 {
		return 0, 0, corrupt("record at %d of %d bytes overruns the ring", pos, size)
	}
	return h, size, nil
}

func (r *Ring) alignUp(n uint64) uint64 { return (n + r.algn - 1) &^ (r.algn - 1) }

// recordSize is the number of ring bytes a message of n bytes occupies.
func (r *Ring) recordSize(n int) uint64 { return r.hdr + r.alignUp(uint64(n)) }

// SetWaiting sets this process's bit in the waiter mask of direction d:
// processes that make data (or space) wake it.
func (r *Ring) SetWaiting(d Direction) {
	atomic.OrUint64(r.waiterWord(d), uint64(1)<<(r.slot%64))
}

// ClearWaiting clears this process's bit in the waiter mask of direction d.
func (r *Ring) ClearWaiting(d Direction) {
	atomic.AndUint64(r.waiterWord(d), ^(uint64(1) << (r.slot % 64)))
}

// waiterWord is the word of the waiter mask of direction d that holds this
// process's bit.
func (r *Ring) waiterWord(d Direction) *uint64 {
	if d == ForSpace {
		return &r.w.spaceMask[r.slot/64]
	}
	return &r.w.dataMask[r.slot/64]
}

// HasWaiters reports whether any process sleeps waiting in direction d.
func (r *Ring) HasWaiters(d Direction) bool {
	if d == ForSpace {
		return anyBit(r.w.spaceMask)
	}
	return anyBit(r.w.dataMask)
}

// SweepWaiters clears the waiter bits of processes that are gone, so that
// producers and consumers stop waking nobody. It returns how many it cleared.
func (r *Ring) SweepWaiters() int {
	n := 0
	for _, m := range []*[maskWords]uint64{r.w.dataMask, r.w.spaceMask} {
		for i := range m {
			v := atomic.LoadUint64(&m[i])
			for v != 0 {
				b := bits.TrailingZeros64(v)
				v &^= 1 << b
				s := i*64 + b
				if s != r.slot && !r.env.Held(s) {
					atomic.AndUint64(&m[i], ^(uint64(1) << b))
					n++
				}
			}
		}
	}
	return n
}

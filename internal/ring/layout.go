package ring

// This file holds every piece of shared-memory layout arithmetic and every
// use of unsafe in mpq. Everything else reaches the mapping through the
// accessors defined here.

import (
	"sync/atomic"
	"unsafe"
)

// File format. A queue file is a header page, a process table and a ring:
//
//	[0, PageSize)                     header: identity, then one 64-byte line per hot word group
//	[PageSize, RingOffset)            process table: MaxProcs slots of SlotSize bytes
//	[RingOffset, RingOffset+capacity) ring of records
const (
	Magic       = "MPQRING\x00"
	Version     = 1
	PageSize    = 4096
	MaxProcs    = 256
	SlotSize    = 64
	TableOffset = PageSize
	RingOffset  = TableOffset + MaxProcs*SlotSize
	MinCapacity = 4096
	MaxCapacity = 1 << 40
	RecordAlign = 8
	HeaderBytes = 8 // bytes of a record header

	byteOrderMark = 0x01020304
)

// Header offsets. Identity words are written once at creation.
const (
	offMagic     = 0  // [8]byte
	offVersion   = 8  // uint32
	offByteOrder = 12 // uint32
	offCapacity  = 16 // uint64
	offMaxMsg    = 24 // uint64
	offRingOff   = 32 // uint32
	offMaxProcs  = 36 // uint32
	offCreated   = 40 // int64, unix nanoseconds
	offFlags     = 48 // uint32

	// Producers' private line: only processes putting touch it.
	offProdLock = 64 // uint32: ref of the holder, 0 = free
	offPuts     = 72 // uint64
	// Published by producers, polled by consumers.
	offTail   = 128 // uint64: reserve position
	offSealed = 136 // uint32
	// Consumers' private line.
	offConsLock = 192 // uint32
	offGets     = 200 // uint64
	// Published by consumers, read by producers when their cached copy
	// says the ring is full. Every take completes under the consumer lock,
	// so head is also the reclaim position: the bytes below it are free.
	offHead = 256 // uint64: claim position
	offFree = 264 // uint64: reserved for a separate reclaim position (unused)

	offDataSeq   = 320 // uint32 futex word: bumped when data may be available
	offSpaceSeq  = 384 // uint32 futex word: bumped when space may be available
	offDataMask  = 448 // [4]uint64: bit per slot whose process waits for data
	offSpaceMask = 512 // [4]uint64: bit per slot whose process waits for space

	// statistics line
	offWaits     = 576 // uint64
	offRecovered = 584 // uint64: dead owners recovered
	offRecount   = 592 // uint32: counters must be recomputed

	maskWords = MaxProcs / 64
)

// Slot field offsets, relative to the slot.
const (
	slotGen   = 0  // uint32: generation, bumped by every process that takes the slot
	slotPID   = 4  // uint32
	slotSince = 8  // int64, unix nanoseconds
	slotRole  = 16 // uint32: RoleProducer | RoleConsumer
)

// Roles a process has played on a queue, recorded in its slot.
const (
	RoleProducer = 1 << iota
	RoleConsumer
)

// Record header word: payload length in the low 32 bits, state in the next 4;
// the top 28 bits are zero (reserved for the ref of a consumer holding the
// record in an acknowledgement mode).
const (
	stateReady = 1
	statePad   = 2

	stateShift = 32
	genBits    = 20
	genMask    = 1<<genBits - 1
	slotBits   = 8
)

func makeHeader(length uint64, state uint64) uint64 { return length | state<<stateShift }

func headerLen(h uint64) uint64   { return h & 0xFFFFFFFF }
func headerState(h uint64) uint64 { return h >> stateShift & 0xF }

// A ref names an attached process: its slot and the slot's generation when it
// attached. It is never zero.
func makeRef(slot int, gen uint32) uint32 { return gen<<slotBits | uint32(slot) }
func refSlot(ref uint32) int              { return int(ref & (1<<slotBits - 1)) }
func refGen(ref uint32) uint32            { return ref >> slotBits }

func align(n uint64) uint64 { return (n + RecordAlign - 1) &^ (RecordAlign - 1) }

// RecordSize is the number of ring bytes a message of n bytes occupies.
func RecordSize(n int) uint64 { return HeaderBytes + align(uint64(n)) }

// MinSize is the size of a queue file holding a ring of the given capacity.
func MinSize(capacity uint64) int64 { return int64(RingOffset + capacity) }

type words struct {
	prodLock, sealed, consLock, dataSeq, spaceSeq, recount *uint32
	tail, puts, head, gets, waits, recovered               *uint64
	dataMask, spaceMask                                    *[maskWords]uint64
}

func u32(mem []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
func u64(mem []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&mem[off])) }

func wordsOf(mem []byte) words {
	return words{
		prodLock: u32(mem, offProdLock), sealed: u32(mem, offSealed),
		consLock: u32(mem, offConsLock), dataSeq: u32(mem, offDataSeq),
		spaceSeq: u32(mem, offSpaceSeq), recount: u32(mem, offRecount),
		tail: u64(mem, offTail), puts: u64(mem, offPuts), head: u64(mem, offHead),
		gets: u64(mem, offGets), waits: u64(mem, offWaits),
		recovered: u64(mem, offRecovered),
		dataMask:  (*[maskWords]uint64)(unsafe.Pointer(&mem[offDataMask])),
		spaceMask: (*[maskWords]uint64)(unsafe.Pointer(&mem[offSpaceMask])),
	}
}

func slotU32(mem []byte, slot, off int) *uint32 { return u32(mem, TableOffset+slot*SlotSize+off) }
func slotI64(mem []byte, slot, off int) *int64 {
	return (*int64)(unsafe.Pointer(&mem[TableOffset+slot*SlotSize+off]))
}

// SlotOffset is the file offset of a slot: the byte a process locks to say it
// is attached through that slot.
func SlotOffset(slot int) int64 { return int64(TableOffset + slot*SlotSize) }

// Record headers are read and written with plain loads and stores: a record
// is only read below tail, and tail is published with an atomic store after
// the record is complete (and head likewise before its space is reused).
func loadHeader(data []byte, idx uint64) uint64 {
	return *(*uint64)(unsafe.Pointer(&data[idx]))
}
func storeHeader(data []byte, idx uint64, h uint64) {
	*(*uint64)(unsafe.Pointer(&data[idx])) = h
}

func anyBit(m *[maskWords]uint64) bool {
	return atomic.LoadUint64(&m[0])|atomic.LoadUint64(&m[1])|atomic.LoadUint64(&m[2])|atomic.LoadUint64(&m[3]) != 0
}

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
//	[PageSize, EntryOffset)           process table: MaxProcs slots of SlotSize bytes
//	[EntryOffset, RingOffset)         deliveries table: MaxInFlight entries of EntrySize bytes
//	[RingOffset, RingOffset+capacity) ring of records
const (
	Magic       = "MPQRING\x00"
	Version     = 3
	PageSize    = 4096
	MaxProcs    = 256
	SlotSize    = 64
	TableOffset = PageSize
	MaxInFlight = 1024
	EntrySize   = 32
	EntryOffset = TableOffset + MaxProcs*SlotSize
	RingOffset  = EntryOffset + MaxInFlight*EntrySize
	MinCapacity = 4096
	MaxCapacity = 1 << 40
	RecordAlign = 8 // alignment of records in a plain queue
	HeaderBytes = 8 // bytes of a record header in a plain queue
	// A durable queue's records have a second header word holding a
	// CRC32C, and are aligned to its size so that a padding record always
	// fits the end of the ring.
	DurableHeaderBytes = 16

	// FlagDurable in the flags word marks a durable queue.
	FlagDurable = 1
	// FlagLockFile in the flags word marks a queue whose liveness locks
	// are in its lock file (see Geometry.LockFile).
	FlagLockFile = 2
	// MaxDeadLetterName is the longest dead-letter queue name recorded.
	MaxDeadLetterName = 255

	byteOrderMark = 0x01020304
)

// Header offsets. Identity words are written once at creation.
const (
	offMagic     = 0    // [8]byte
	offVersion   = 8    // uint32
	offByteOrder = 12   // uint32
	offCapacity  = 16   // uint64
	offMaxMsg    = 24   // uint64
	offRingOff   = 32   // uint32
	offMaxProcs  = 36   // uint32
	offCreated   = 40   // int64, unix nanoseconds
	offFlags     = 48   // uint32
	offMaxDeliv  = 52   // uint32: deliveries by Receive before dead-lettering; 0 = no limit
	offLockID    = 56   // uint32: names the lock file of a FlagLockFile queue; 0 otherwise
	offIdentCRC  = 60   // uint32: CRC32C of the identity words and the dead-letter name
	offDeadName  = 1024 // uint8 length, then the dead-letter queue name

	// Producers' private line: only processes putting touch it.
	offProdLock = 64 // uint32: ref of the holder, 0 = free
	offPuts     = 72 // uint64
	// Published by producers, polled by consumers.
	offTail = 128 // uint64: reserve position
	// offSealed refuses puts when not zero: sealedBit is Seal's,
	// sealedCorrupt says the queue was found corrupt (see offCorrupt).
	// Producers read it on every put, under their lock, and the polls of
	// waiters (HasData, HasSpace) say "try now" when it is set, so the
	// corrupt state reaches them at no cost.
	offSealed = 136 // uint32
	// Consumers' private line.
	offConsLock = 192 // uint32
	// offRepair: repairNeeded means a consumer died holding the lock:
	// repair before use; repairCorrupt, that the queue was found corrupt
	// (see offCorrupt). Consumers read it on every take of their lock.
	offRepair   = 196 // uint32
	offGets     = 200 // uint64: records taken at head (by Get or a first Receive)
	offReturned = 212 // uint32: of which given back, waiting for redelivery
	offAcks     = 216 // uint64
	offRedeliv  = 224 // uint64: deliveries given back
	offDead     = 232 // uint64: messages past MaxDeliveries
	offScanAt   = 240 // int64: unix nanoseconds of the last lease scan
	// Published by consumers, read by producers when their cached copy
	// says the ring is full. Records below head are taken; those below free
	// are done and their bytes free. free == head unless deliveries are held.
	offHead = 256 // uint64: claim position
	offFree = 264 // uint64: reclaim position, while deliveries are held
	// Deliveries table entries in use: producers read it with head, to
	// know whether free or head is the reclaim position.
	offInFlight = 272 // uint32

	offDataSeq   = 320 // uint32 futex word: bumped when data may be available
	offSpaceSeq  = 384 // uint32 futex word: bumped when space may be available
	offDataMask  = 448 // [4]uint64: bit per slot whose process waits for data
	offSpaceMask = 512 // [4]uint64: bit per slot whose process waits for space

	// statistics line
	offWaits     = 576 // uint64
	offRecovered = 584 // uint64: dead owners recovered
	offRecount   = 592 // uint32: counters must be recomputed
	offTorn      = 600 // uint64: damaged records dropped by recovery
	// The corrupt state (corrupt.go): once any process finds the queue
	// corrupt it records what it found here, for good, until recovery
	// (Recover) clears it. offCorrupt is corruptRecording while the
	// finder writes the record, then corruptRecorded; any other value
	// but 0 is itself damage.
	offCorrupt    = 608  // uint32: 0 = sound
	offCorruptPID = 612  // uint32: pid of the process that found it, 0 if unknown
	offCorruptAt  = 616  // int64: unix nanoseconds when it was found
	offCorruptWhy = 2048 // uint8 length, then what was found: "record at 4096 has state 9"

	maskWords = MaxProcs / 64
)

// Values of the words that carry the corrupt state.
const (
	sealedBit     = 1 // offSealed: Seal was called
	sealedCorrupt = 2 // offSealed: the queue is corrupt
	repairNeeded  = 1 // offRepair: a consumer died holding the lock
	repairCorrupt = 2 // offRepair: the queue is corrupt

	corruptRecording = 1 // offCorrupt: the finder is writing the record
	corruptRecorded  = 2 // offCorrupt: the record is complete

	maxCorruptWhy = 255 // bytes of the text at offCorruptWhy
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

// Record header word: payload length in the low 32 bits, state in the next
// 4; a taken record has the index of its deliveries table entry in the top
// 28 bits. Records go ready → (taken →) done; a padding record fills the end
// of the ring. In a durable queue a second word holds the record's CRC32C.
const (
	stateReady = 1
	statePad   = 2
	stateTaken = 3 // held by a delivery (or given back): see its entry
	stateDone  = 4 // taken for good, waiting to be reclaimed

	stateShift = 32
	idxShift   = 36
	genBits    = 20
	genMask    = 1<<genBits - 1
	slotBits   = 8
)

func makeHeader(length uint64, state uint64) uint64 { return length | state<<stateShift }

func headerLen(h uint64) uint64   { return h & 0xFFFFFFFF }
func headerState(h uint64) uint64 { return h >> stateShift & 0xF }
func headerIdx(h uint64) uint32   { return uint32(h >> idxShift) }
func withState(h uint64, state uint64, idx uint32) uint64 {
	return headerLen(h) | state<<stateShift | uint64(idx)<<idxShift
}

// Deliveries table entry, relative to the entry.
const (
	entPos      = 0  // uint64: position of the record
	entState    = 8  // uint32: entFree, entHeld or entReturned
	entOwner    = 12 // uint32: ref of the holder
	entCount    = 16 // uint32: deliveries so far
	entToken    = 20 // uint32: bumped by every delivery, so a stale Delivery cannot act
	entDeadline = 24 // int64: unix ns: end of the lease (held), or not before (returned)

	entFree     = 0
	entHeld     = 1
	entReturned = 2
)

// A ref names an attached process: its slot and the slot's generation when it
// attached. It is never zero.
func makeRef(slot int, gen uint32) uint32 { return gen<<slotBits | uint32(slot) }
func refSlot(ref uint32) int              { return int(ref & (1<<slotBits - 1)) }
func refGen(ref uint32) uint32            { return ref >> slotBits }

func align(n uint64) uint64 { return (n + RecordAlign - 1) &^ (RecordAlign - 1) }

// RecordSize is the number of ring bytes a message of n bytes occupies in a
// plain queue.
func RecordSize(n int) uint64 { return HeaderBytes + align(uint64(n)) }

// DurableRecordSize is RecordSize in a durable queue.
func DurableRecordSize(n int) uint64 {
	return DurableHeaderBytes + (uint64(n)+DurableHeaderBytes-1)&^(DurableHeaderBytes-1)
}

// MinSize is the size of a queue file holding a ring of the given capacity.
func MinSize(capacity uint64) int64 { return int64(RingOffset + capacity) }

type words struct {
	prodLock, sealed, consLock, dataSeq, spaceSeq, recount *uint32
	repair, inFlight, returned, corrupt, corruptPID        *uint32
	tail, puts, head, free, gets, waits, recovered         *uint64
	acks, redeliv, dead, torn                              *uint64
	scanAt, corruptAt                                      *int64
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
		repair:    u32(mem, offRepair), inFlight: u32(mem, offInFlight), returned: u32(mem, offReturned),
		free: u64(mem, offFree), acks: u64(mem, offAcks), redeliv: u64(mem, offRedeliv),
		dead: u64(mem, offDead), torn: u64(mem, offTorn),
		scanAt:  (*int64)(unsafe.Pointer(&mem[offScanAt])),
		corrupt: u32(mem, offCorrupt), corruptPID: u32(mem, offCorruptPID),
		corruptAt: (*int64)(unsafe.Pointer(&mem[offCorruptAt])),
		dataMask:  (*[maskWords]uint64)(unsafe.Pointer(&mem[offDataMask])),
		spaceMask: (*[maskWords]uint64)(unsafe.Pointer(&mem[offSpaceMask])),
	}
}

func slotU32(mem []byte, slot, off int) *uint32 { return u32(mem, TableOffset+slot*SlotSize+off) }
func slotI64(mem []byte, slot, off int) *int64 {
	return (*int64)(unsafe.Pointer(&mem[TableOffset+slot*SlotSize+off]))
}

func entU32(mem []byte, i uint32, off int) *uint32 {
	return u32(mem, EntryOffset+int(i)*EntrySize+off)
}
func entU64(mem []byte, i uint32, off int) *uint64 {
	return u64(mem, EntryOffset+int(i)*EntrySize+off)
}
func entI64(mem []byte, i uint32, off int) *int64 {
	return (*int64)(unsafe.Pointer(&mem[EntryOffset+int(i)*EntrySize+off]))
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

// The second header word of a durable record: its CRC32C.
func loadCRC(data []byte, idx uint64) uint32 {
	return uint32(*(*uint64)(unsafe.Pointer(&data[idx+8])))
}
func storeCRC(data []byte, idx uint64, c uint32) {
	*(*uint64)(unsafe.Pointer(&data[idx+8])) = uint64(c)
}

func anyBit(m *[maskWords]uint64) bool {
	return atomic.LoadUint64(&m[0])|atomic.LoadUint64(&m[1])|atomic.LoadUint64(&m[2])|atomic.LoadUint64(&m[3]) != 0
}

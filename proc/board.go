//go:build unix

package proc

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A board is memory shared by a pool and its workers, in a file (a memfd
// on Linux) that each worker maps. Each worker writes on its own slot what
// it is doing: the chunk it holds and the task of the chunk it runs, so
// that when it dies the pool knows, from the slot the dead process left,
// which task the death is charged to; and, under a TaskTimeout, when that
// task started. The pool writes the calls it has abandoned, which workers
// skip.
//
// Nothing on the board decides what is delivered: the tasks queue does.
// The board only says whom to blame, and what is no longer wanted.
type board struct {
	f   *os.File // nil in a worker, which keeps the one proc handed it
	mem []byte
}

// Layout of the board. The header holds the abandoned calls whose chunks
// may still wait in the tasks queue: a set of call IDs in boardCancels
// entries (0 for a free entry), of which the first boardHigh may be in
// use, and a generation bumped after each change, which a running worker
// watches between tasks. The pool removes a call once every chunk of it
// has come back (run, skipped or returned), so the set holds only the
// calls that still have chunks waiting.
const (
	boardGen      = 0  // uint64: changes to the set so far
	boardHigh     = 8  // uint64: entries that may be in use
	boardCancels  = 64 // [cancelSet]uint64: call IDs
	cancelSet     = 1024
	boardSlots    = boardCancels + cancelSet*8
	slotBytes     = 64
	slotChunk     = 0  // uint64: the chunk held, 0 for none
	slotPos       = 8  // uint32: the task of the chunk being run
	slotPhase     = 12 // uint32: phase*
	slotStarted   = 16 // int64: monotonic nanoseconds the task started, 0 if none (TaskTimeout only)
	slotWorkerPID = 24 // uint32: the worker's pid, written when it starts
	slotReady     = 28 // uint32: 1 once the worker has run Init
)

// Phases of a worker, in slotPhase.
const (
	phaseIdle      uint32 = iota // holds nothing, or has not yet said
	phaseRunning                 // running task slotPos of chunk slotChunk
	phaseFinishing               // has run every task of slotChunk; putting results and acknowledging
)

// boardSize is the size of the board of a pool with workers slots.
func boardSize(workers int) int {
	n := boardSlots + workers*slotBytes
	return (n + 4095) &^ 4095
}

// newBoard makes a zeroed board for workers slots.
func newBoard(workers int) (*board, error) {
	size := boardSize(workers)
	f, err := payloadFile(make([]byte, size))
	if err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("map the pool's board: %w", err)
	}
	return &board{f: f, mem: mem}, nil
}

// openBoard maps the board a worker was handed, checking that slot is on
// it.
func openBoard(f *os.File, slot int) (*board, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size < boardSlots || size > 1<<30 || slot < 0 || int64(boardSlots+(slot+1)*slotBytes) > size {
		return nil, fmt.Errorf("the pool's board is %d bytes, too small for slot %d", size, slot)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the pool's board: %w", err)
	}
	return &board{mem: mem}, nil
}

// close unmaps the board and closes its file.
func (b *board) close() {
	if b.mem != nil {
		unix.Munmap(b.mem)
		b.mem = nil
	}
	if b.f != nil {
		b.f.Close()
	}
}

func (b *board) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&b.mem[off])) }
func (b *board) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&b.mem[off])) }
func (b *board) i64(off int) *int64  { return (*int64)(unsafe.Pointer(&b.mem[off])) }

// A slot is one worker's part of the board.
type slot struct {
	chunk   *uint64
	pos     *uint32
	phase   *uint32
	started *int64
	pid     *uint32
	ready   *uint32
}

// slot returns slot i.
func (b *board) slot(i int) slot {
	o := boardSlots + i*slotBytes
	return slot{
		chunk: b.u64(o + slotChunk), pos: b.u32(o + slotPos), phase: b.u32(o + slotPhase),
		started: b.i64(o + slotStarted), pid: b.u32(o + slotWorkerPID), ready: b.u32(o + slotReady),
	}
}

// clear readies a slot for a new worker.
func (s slot) clear() {
	atomic.StoreUint64(s.chunk, 0)
	atomic.StoreUint32(s.pos, 0)
	atomic.StoreUint32(s.phase, phaseIdle)
	atomic.StoreInt64(s.started, 0)
	atomic.StoreUint32(s.pid, 0)
	atomic.StoreUint32(s.ready, 0)
}

// A mark is what a slot says its worker is doing.
type mark struct {
	chunk   uint64
	pos     uint32
	phase   uint32
	started int64
}

// read returns what the slot says. For a live worker under a TaskTimeout,
// ok is false if the worker moved on while it was read.
func (s slot) read() (m mark, ok bool) {
	m.started = atomic.LoadInt64(s.started)
	m.chunk = atomic.LoadUint64(s.chunk)
	m.pos = atomic.LoadUint32(s.pos)
	m.phase = atomic.LoadUint32(s.phase)
	return m, atomic.LoadInt64(s.started) == m.started
}

// abandon records that the tasks of call are no longer wanted, and
// reports whether it could: the set holds cancelSet calls at most. The
// pool alone writes the set, under its lock.
func (b *board) abandon(call uint64) bool {
	high := int(atomic.LoadUint64(b.u64(boardHigh)))
	i := 0
	for i < high && atomic.LoadUint64(b.u64(boardCancels+i*8)) != 0 {
		i++
	}
	if i == cancelSet {
		return false
	}
	atomic.StoreUint64(b.u64(boardCancels+i*8), call)
	if i == high {
		atomic.StoreUint64(b.u64(boardHigh), uint64(high+1))
	}
	atomic.AddUint64(b.u64(boardGen), 1)
	return true
}

// forget removes call from the set: none of its chunks is left to skip.
func (b *board) forget(call uint64) {
	high := int(atomic.LoadUint64(b.u64(boardHigh)))
	for i := range high {
		if atomic.LoadUint64(b.u64(boardCancels+i*8)) == call {
			atomic.StoreUint64(b.u64(boardCancels+i*8), 0)
		}
	}
	for high > 0 && atomic.LoadUint64(b.u64(boardCancels+(high-1)*8)) == 0 {
		high--
	}
	atomic.StoreUint64(b.u64(boardHigh), uint64(high))
}

// gen returns a count that changes when a call is abandoned.
func (b *board) gen() uint64 { return atomic.LoadUint64(b.u64(boardGen)) }

// abandoned reports whether call is in the set of abandoned calls.
func (b *board) abandoned(call uint64) bool {
	high := min(int(atomic.LoadUint64(b.u64(boardHigh))), cancelSet)
	for i := range high {
		if atomic.LoadUint64(b.u64(boardCancels+i*8)) == call {
			return true
		}
	}
	return false
}

// monotonic returns the system's monotonic clock in nanoseconds, the same
// in every process.
func monotonic() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return time.Now().UnixNano()
	}
	return ts.Nano()
}

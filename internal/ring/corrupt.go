package ring

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// The corrupt state.
//
// A queue is shared by processes that each validate what they read, but
// damage one of them finds is not damage the others would ever look at: a
// producer waiting for room behind a record that no consumer can take
// would wait for good. So the first process to find the queue corrupt (an
// exported method returning an error made by corrupt) records it in the
// header, for every process:
//
//   - what it found, its pid and the time, at offCorrupt, offCorruptPID,
//     offCorruptAt and offCorruptWhy, written once (a CAS on offCorrupt
//     elects the writer);
//   - then the sealedCorrupt bit of the sealed word, which every put reads
//     under the producer lock and which makes the waiters' polls say "try
//     now", and the repairCorrupt bit of the repair word, which every take
//     of the consumer lock reads: so every call, in every process, finds
//     the state at no cost on its hot path;
//   - then it wakes the waiters of both futex words, whose next attempt
//     fails, and lock waiters check the record between rounds.
//
// From then on every call returns a *stuckError, which wraps ErrCorrupt
// and says what was found and how to fix it. Only recovery (Recover, run
// when a durable queue is opened by no other process) clears the state,
// once it has rebuilt the queue from its records; a queue in memory stays
// corrupt until it is removed. A memory fault (fault.go) is not recorded:
// it may be this process's alone (a page its tmpfs cannot supply), and
// marking a sound queue corrupt for good would be worse.

// damage is an error found in shared memory: ErrCorrupt with what was found.
// Exported methods hand it to fail, which records it.
type damage struct{ what string }

func (e *damage) Error() string { return ErrCorrupt.Error() + ": " + e.what }
func (e *damage) Unwrap() error { return ErrCorrupt }

// corrupt wraps ErrCorrupt with what was found in shared memory.
func corrupt(format string, args ...any) error {
	return &damage{what: fmt.Sprintf(format, args...)}
}

// stuckError is what every call on a queue found corrupt returns.
type stuckError struct {
	what    string
	pid     uint32
	at      time.Time
	durable bool
}

func (e *stuckError) Unwrap() error { return ErrCorrupt }

// detail says what was found, by which process and when.
func (e *stuckError) detail() string {
	switch {
	case e.pid != 0:
		return fmt.Sprintf("%s (found by process %d at %s)", e.what, e.pid, e.at.Format(time.RFC3339))
	case !e.at.IsZero() && e.at.UnixNano() != 0:
		return fmt.Sprintf("%s (found at %s)", e.what, e.at.Format(time.RFC3339))
	}
	return e.what
}

func (e *stuckError) Error() string {
	var b strings.Builder
	b.WriteString(ErrCorrupt.Error())
	b.WriteString(": ")
	b.WriteString(e.detail())
	b.WriteString("; every call on this queue, in every process, fails until it is ")
	if e.durable {
		b.WriteString("repaired: close it in every process and open it again, and the first open recovers it " +
			"(dropping the damaged records) or says that it cannot; or remove it (mpq rm --force NAME, or mpq.Remove)")
	} else {
		b.WriteString("removed: a queue in memory has no recovery; remove it (mpq rm --force NAME, or mpq.Remove) " +
			"and create it again (its messages are lost)")
	}
	return b.String()
}

// fail records err as the queue's corrupt state if it is damage found in
// shared memory, and returns the error the call returns: err, or the
// corrupt state's error.
func (r *Ring) fail(err error) error {
	if d, ok := err.(*damage); ok {
		return r.markCorrupt(d.what)
	}
	return err
}

// markCorrupt records that the queue is corrupt, as what says, wakes every
// waiter and returns the corrupt state's error.
func (r *Ring) markCorrupt(what string) error {
	pid := atomic.LoadUint32(slotU32(r.mem, r.slot, slotPID))
	r.recordCorrupt(what, pid)
	r.bump(r.w.dataSeq)
	r.bump(r.w.spaceSeq)
	if atomic.LoadUint32(r.w.corrupt) == corruptRecorded {
		return r.Corrupted() // what the first finder recorded
	}
	return r.stuck(what, pid, time.Now())
}

// recordCorrupt writes the corrupt state, unless a process already did,
// then sets the bits the hot paths read.
func (r *Ring) recordCorrupt(what string, pid uint32) {
	if atomic.CompareAndSwapUint32(r.w.corrupt, 0, corruptRecording) {
		atomic.StoreUint32(r.w.corruptPID, pid)
		atomic.StoreInt64(r.w.corruptAt, time.Now().UnixNano())
		n := min(len(what), maxCorruptWhy)
		r.mem[offCorruptWhy] = byte(n)
		copy(r.mem[offCorruptWhy+1:offCorruptWhy+1+n], what)
		atomic.StoreUint32(r.w.corrupt, corruptRecorded)
	}
	atomic.OrUint32(r.w.sealed, sealedCorrupt)
	atomic.OrUint32(r.w.repair, repairCorrupt)
}

// clearCorrupt clears the corrupt state: recovery's last step, once it has
// rebuilt the queue. The sealed word keeps only Seal's bit.
func (r *Ring) clearCorrupt() {
	atomic.AndUint32(r.w.sealed, sealedBit)
	atomic.AndUint32(r.w.repair, repairNeeded)
	atomic.StoreUint32(r.w.corruptPID, 0)
	atomic.StoreInt64(r.w.corruptAt, 0)
	clear(r.mem[offCorruptWhy : offCorruptWhy+1+maxCorruptWhy])
	atomic.StoreUint32(r.w.corrupt, 0)
}

func (r *Ring) stuck(what string, pid uint32, at time.Time) error {
	return &stuckError{what: what, pid: pid, at: at, durable: r.geo.Durable}
}

// Corrupted returns the error every call returns once the queue was found
// corrupt, or nil. It reads the header words that carry the state, which
// the hot paths do not: callers are the waits and the error paths.
func (r *Ring) Corrupted() error {
	what, pid, at := corruptState(r.mem, r.w)
	if what == "" {
		return nil
	}
	r.poison()
	return r.stuck(what, pid, at)
}

// poison makes sure the bits the hot paths read are set, for a corrupt
// state they are missing from (its words were written by something other
// than a finder), and wakes the waiters then.
func (r *Ring) poison() {
	if atomic.LoadUint32(r.w.sealed)&sealedCorrupt != 0 && atomic.LoadUint32(r.w.repair)&repairCorrupt != 0 {
		return
	}
	atomic.OrUint32(r.w.sealed, sealedCorrupt)
	atomic.OrUint32(r.w.repair, repairCorrupt)
	if r.env != nil {
		r.bump(r.w.dataSeq)
		r.bump(r.w.spaceSeq)
	}
}

// stop returns the error of a call that found sealed, the sealed word,
// holding more than Seal's bit: the corrupt state, or (when no process
// recorded one, so the word itself is damaged) the damage of the word,
// recorded now.
func (r *Ring) stop(sealed uint32) error {
	if atomic.LoadUint32(r.w.corrupt) == 0 {
		// The bits are set after the record: no record, no finder.
		return r.markCorrupt(fmt.Sprintf("sealed word holds %#x", sealed))
	}
	return r.Corrupted()
}

// stopRepair is stop for the repair word.
func (r *Ring) stopRepair(repair uint32) error {
	if atomic.LoadUint32(r.w.corrupt) == 0 {
		return r.markCorrupt(fmt.Sprintf("repair word holds %#x", repair))
	}
	return r.Corrupted()
}

// corruptState reads the corrupt state of a queue: what was found ("" when
// the queue is sound), by which process and when. The words may hold
// anything another process wrote: a state word of an unknown value, and a
// text of control characters, come back as what they are.
func corruptState(mem []byte, w words) (what string, pid uint32, at time.Time) {
	switch st := atomic.LoadUint32(w.corrupt); st {
	case 0:
		if s := atomic.LoadUint32(w.sealed); s&^sealedBit != 0 {
			return fmt.Sprintf("sealed word holds %#x", s), 0, time.Time{}
		}
		if v := atomic.LoadUint32(w.repair); v&^repairNeeded != 0 {
			return fmt.Sprintf("repair word holds %#x", v), 0, time.Time{}
		}
		return "", 0, time.Time{}
	case corruptRecording:
		return "found corrupt by a process still recording (or killed recording) what it found", 0, time.Time{}
	case corruptRecorded:
	default:
		return fmt.Sprintf("corrupt state word holds %#x", st), 0, time.Time{}
	}
	n := int(mem[offCorruptWhy])
	what = printable(mem[offCorruptWhy+1 : offCorruptWhy+1+n])
	if what == "" {
		what = "found corrupt (no details recorded)"
	}
	return what, atomic.LoadUint32(w.corruptPID), time.Unix(0, atomic.LoadInt64(w.corruptAt))
}

// printable returns b as text, each byte outside printable ASCII replaced
// by '?': the text comes from the file, and a terminal prints it.
func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < ' ' || c > '~' {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

// corruptText is what the queue's corrupt state says was found, by which
// process and when, "" when the queue is sound.
func (r *Ring) corruptText() string { return corruptDetail(r.mem, r.w) }

func corruptDetail(mem []byte, w words) string {
	what, pid, at := corruptState(mem, w)
	if what == "" {
		return ""
	}
	return (&stuckError{what: what, pid: pid, at: at}).detail()
}

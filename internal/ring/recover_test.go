package ring

// Crash recovery of durable rings (Recover) on heap memory: damaged records
// are dropped and counted, one stretch per run of damage; everything intact
// is kept and delivered, in order; bad positions give ErrCorrupt and leave
// the memory alone.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/ring/ringtest"
)

// Test messages carry their own checksum, independent of the ring's CRC32C:
// a CRC-32 (IEEE) of the rest, a sequence number, then filler in which no
// byte is zero. A message longer than ckMin thus ends in a byte that is not
// zero: zeroing any part of it changes it.
const ckMin = 8

func ckMsg(seq, n int) []byte {
	b := make([]byte, max(n, ckMin))
	binary.LittleEndian.PutUint32(b[4:], uint32(seq))
	for j := ckMin; j < len(b); j++ {
		b[j] = byte(seq*13+j*7) | 1
	}
	binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b
}

// ckParse checks a message made by ckMsg and returns its sequence number.
func ckParse(b []byte) (int, bool) {
	if len(b) < ckMin || crc32.ChecksumIEEE(b[4:]) != binary.LittleEndian.Uint32(b) {
		return 0, false
	}
	return int(binary.LittleEndian.Uint32(b[4:])), true
}

// newDurableMem is newMem for a durable queue.
func newDurableMem(tb testing.TB, capacity, maxMsg uint64) []byte {
	tb.Helper()
	return newMemOf(tb, Geometry{Capacity: capacity, MaxMessage: maxMsg, Durable: true})
}

// A ringTracker drives a durable ring in slot 0 and keeps its own account of
// where every record lies, checked against the tail the ring publishes.
type ringTracker struct {
	ringtest.Layout
	tb    testing.TB
	mem   []byte
	r     *Ring
	seq   int
	taken int // records below head (pads included)
}

func newRingTracker(tb testing.TB, capacity, maxMsg uint64) *ringTracker {
	tb.Helper()
	mem := newDurableMem(tb, capacity, maxMsg)
	return &ringTracker{
		Layout: ringtest.Layout{Cap: capacity, Header: DurableHeaderBytes, Size: DurableRecordSize},
		tb:     tb, mem: mem, r: attachT(tb, mem, newEnv(), 0),
	}
}

// put puts the next message, of n bytes.
func (k *ringTracker) put(n int) {
	k.tb.Helper()
	m := ckMsg(k.seq, n)
	if err := put(k.r, m); err != nil {
		k.tb.Fatalf("put of message %d (%d bytes): %v", k.seq, n, err)
	}
	k.Put(k.seq, len(m))
	k.seq++
	if got := word64(k.mem, offTail); got != k.Tail {
		k.tb.Fatalf("after message %d the ring's tail is %d; the test's account says %d", k.seq-1, got, k.Tail)
	}
}

// take takes the next message with Get, or Receive if hold is set (and
// leaves it held).
func (k *ringTracker) take(hold bool) {
	k.tb.Helper()
	for k.Recs[k.taken].Pad() {
		k.taken++
	}
	want := k.Recs[k.taken].Seq
	var got []byte
	var err error
	if hold {
		got, _, err = k.r.Receive(nil, time.Hour, Try)
	} else {
		got, err = get(k.r)
	}
	if seq, ok := ckParse(got); err != nil || !ok || seq != want {
		k.tb.Fatalf("take: got message %d (intact %v), %v; want message %d", seq, ok, err, want)
	}
	k.taken++
}

// index is the byte of mem holding byte off of the record at pos.
func (k *ringTracker) index(pos uint64, off int) int {
	return RingOffset + int(pos&(k.Cap-1)) + off
}

// ahead returns the records above head: those Recover walks when nothing is
// held.
func (k *ringTracker) ahead() []ringtest.Rec { return k.Recs[k.taken:] }

// recoverAndDrain runs Recover on mem, checks its result, then attaches a
// ring, checks Len and Torn, and gets everything, checking that exactly the
// messages wantSeqs come out, intact and in order. A second Recover must
// find nothing more to repair.
func recoverAndDrain(t *testing.T, mem []byte, wantSeqs []int, wantTorn uint64) {
	t.Helper()
	torn, err := Recover(mem)
	if err != nil || torn != wantTorn {
		t.Fatalf("Recover = %d, %v; want %d damaged stretches", torn, err, wantTorn)
	}
	r := attachT(t, mem, newEnv(), 1)
	c := counts(t, r)
	if c.Torn != wantTorn || c.Len != uint64(len(wantSeqs)) {
		t.Errorf("Counts after Recover: Torn %d, Len %d; want %d, %d", c.Torn, c.Len, wantTorn, len(wantSeqs))
	}
	got := []int{}
	for i := 0; i <= len(wantSeqs); i++ {
		m, err := get(r)
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatalf("Get after %v: %v", got, err)
		}
		seq, ok := ckParse(m)
		if !ok {
			t.Fatalf("Get after %v returned a damaged message of %d bytes: %.32x", got, len(m), m)
		}
		got = append(got, seq)
	}
	if !slices.Equal(got, wantSeqs) {
		t.Fatalf("recovered messages %v; want %v", got, wantSeqs)
	}
	if _, err := get(r); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Get after draining: %v; want %v", err, ErrEmpty)
	}
	checkGuard(t, mem)
	if torn, err := Recover(mem); err != nil || torn != 0 {
		t.Fatalf("second Recover = %d, %v; want 0, nil", torn, err)
	}
	if c := counts(t, r); c.Torn != wantTorn {
		t.Errorf("Counts after a second Recover: Torn %d; want still %d", c.Torn, wantTorn)
	}
}

// recoverLengths are the message sizes the tests cycle through: every remainder
// modulo the 16-byte alignment, and a few larger ones.
var recoverLengths = []int{9, 12, 15, 16, 17, 24, 31, 32, 33, 47, 63, 64, 100, 127, 200, 255}

// filledRing returns a ringTracker whose ring holds n messages of assorted recoverLengths,
// the first taken of which were taken by Get.
func filledRing(tb testing.TB, n, taken int) *ringTracker {
	tb.Helper()
	k := newRingTracker(tb, 1<<14, 512)
	for i := range n {
		k.put(recoverLengths[i%len(recoverLengths)])
	}
	for range taken {
		k.take(false)
	}
	return k
}

func TestRecoverIntact(t *testing.T) {
	k := filledRing(t, 40, 7)
	// The processes died holding both locks, waiting, and with counters
	// to recompute.
	env := newEnv()
	setWord32(k.mem, offProdLock, deadRef(t, k.mem, env, 5))
	setWord32(k.mem, offConsLock, deadRef(t, k.mem, env, 6))
	setWord32(k.mem, offRepair, 1)
	setWord32(k.mem, offRecount, 1)
	setWord64(k.mem, offDataMask, 1<<5)
	setWord64(k.mem, offSpaceMask, 1<<6)
	setWord64(k.mem, offPuts, 12345)
	recoverAndDrain(t, k.mem, ringtest.Seqs(k.ahead()), 0)
	for _, off := range []int{offProdLock, offConsLock, offRepair, offRecount} {
		if v := binary.NativeEndian.Uint32(k.mem[off:]); v != 0 {
			t.Errorf("word at %d = %#x after Recover; want 0", off, v)
		}
	}
	if m := word64(k.mem, offDataMask) | word64(k.mem, offSpaceMask); m != 0 {
		t.Errorf("waiter masks %#x after Recover; want 0", m)
	}
}

// TestRecoverEmpty: an empty durable ring, and a plain (not durable) one,
// recover to themselves.
func TestRecoverEmpty(t *testing.T) {
	k := newRingTracker(t, MinCapacity, 100)
	recoverAndDrain(t, k.mem, []int{}, 0)

	mem := newMem(t, MinCapacity, 100)
	r := attachT(t, mem, newEnv(), 0)
	for i := range 10 {
		if err := put(r, msgOf(i, 30)); err != nil {
			t.Fatal(err)
		}
	}
	before := bytes.Clone(mem)
	if torn, err := Recover(mem); torn != 0 || err != nil {
		t.Errorf("Recover of a plain queue = %d, %v; want 0, nil", torn, err)
	}
	if !bytes.Equal(mem, before) {
		t.Errorf("Recover changed a plain queue")
	}
}

// A recDamage says which byte of a record to change, and how.
type recDamage struct {
	name string
	off  func(c ringtest.Rec) int // offset in the record
	xor  byte
}

var recDamages = []recDamage{
	{"length", func(ringtest.Rec) int { return 0 }, 0x01},
	{"length high byte", func(ringtest.Rec) int { return 3 }, 0x80},
	{"state", func(ringtest.Rec) int { return 4 }, 0xFF},
	{"delivery index", func(ringtest.Rec) int { return 6 }, 0x10},
	{"checksum", func(ringtest.Rec) int { return 8 }, 0x01},
	{"checksum last byte", func(ringtest.Rec) int { return 11 }, 0x80},
	{"checksum word high half", func(ringtest.Rec) int { return 13 }, 0x01},
	{"payload first byte", func(ringtest.Rec) int { return DurableHeaderBytes }, 0x01},
	{"payload middle", func(c ringtest.Rec) int { return DurableHeaderBytes + c.N/2 }, 0x40},
	{"payload last byte", func(c ringtest.Rec) int { return DurableHeaderBytes + c.N - 1 }, 0xFF},
}

// TestRecoverDamagedRecord damages one byte of one record, for every record
// and every part of a record: recovery drops exactly that record, counts one
// stretch, and keeps all the others.
func TestRecoverDamagedRecord(t *testing.T) {
	const n, taken = 24, 3
	for _, d := range recDamages {
		t.Run(d.name, func(t *testing.T) {
			for i := taken; i < n; i++ {
				k := filledRing(t, n, taken)
				victim := k.Recs[i]
				k.mem[k.index(victim.Pos, d.off(victim))] ^= d.xor
				seqs, torn := ringtest.Expect(k.ahead(), func(c ringtest.Rec) bool { return c.Pos == victim.Pos })
				t.Run(fmt.Sprint("record ", i), func(t *testing.T) { recoverAndDrain(t, k.mem, seqs, torn) })
			}
		})
	}
}

// TestRecoverStateNotChecksummed: the state nibble is not covered by the
// checksum (consumers change it in place). A record above head marked taken
// or done (a take whose head store never reached the disk) is made ready
// again and delivered.
func TestRecoverStateNotChecksummed(t *testing.T) {
	k := filledRing(t, 10, 2)
	h := loadHeader(k.mem[RingOffset:], k.Recs[4].Pos)
	storeHeader(k.mem[RingOffset:], k.Recs[4].Pos, withState(h, stateDone, 0))
	h = loadHeader(k.mem[RingOffset:], k.Recs[6].Pos)
	storeHeader(k.mem[RingOffset:], k.Recs[6].Pos, withState(h, stateTaken, 17))
	recoverAndDrain(t, k.mem, ringtest.Seqs(k.ahead()), 0)
}

// TestRecoverBelowDamage damages a record below head while nothing is held:
// recovery does not look there (those bytes are free).
func TestRecoverBelowDamage(t *testing.T) {
	k := filledRing(t, 10, 4)
	k.mem[k.index(k.Recs[1].Pos, 20)] ^= 0xFF
	recoverAndDrain(t, k.mem, ringtest.Seqs(k.ahead()), 0)
}

// TestRecoverStretches damages several records: adjacent ones make one
// stretch, separate ones one each.
func TestRecoverStretches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damaged []int
	}{
		{"first", []int{0}},
		{"last", []int{19}},
		{"two adjacent", []int{5, 6}},
		{"two apart", []int{5, 7}},
		{"three runs", []int{0, 1, 9, 12, 13, 14, 19}},
		{"all", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
		{"all but one", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := filledRing(t, 20, 0)
			bad := map[uint64]bool{}
			for j, i := range tc.damaged {
				c := k.Recs[i]
				d := recDamages[j%len(recDamages)]
				k.mem[k.index(c.Pos, d.off(c))] ^= d.xor
				bad[c.Pos] = true
			}
			seqs, torn := ringtest.Expect(k.ahead(), func(c ringtest.Rec) bool { return bad[c.Pos] })
			recoverAndDrain(t, k.mem, seqs, torn)
		})
	}
}

// TestRecoverTruncated zeroes the ring from each cut on, as the extension
// of a truncated file does: every record wholly before the cut is kept,
// everything from the first record it reaches is one stretch.
func TestRecoverTruncated(t *testing.T) {
	truncations(t, filledRing(t, 30, 0))
}

// truncations zeroes copies of k's ring from each of its cuts on, and
// checks what recovery delivers.
func truncations(t *testing.T, k *ringTracker) {
	image := bytes.Clone(k.mem)
	for _, cut := range k.Cuts(k.Recs) {
		t.Run(fmt.Sprint("cut ", cut), func(t *testing.T) {
			mem := newDurableMem(t, k.Cap, k.r.MaxMessage())
			copy(mem, image)
			clear(mem[RingOffset+cut:])
			seqs, torn := ringtest.Expect(k.ahead(), k.TruncatedAt(cut))
			recoverAndDrain(t, mem, seqs, torn)
		})
	}
}

// wrappedRing returns a ringTracker whose ring (4 KiB) has wrapped once, with a
// padding record at the end of the first lap.
func wrappedRing(tb testing.TB) *ringTracker {
	tb.Helper()
	k := newRingTracker(tb, MinCapacity, 1000)
	for i := range 14 {
		k.put(200 + i)
	}
	for range 8 {
		k.take(false)
	}
	for i := range 6 {
		k.put(300 + i)
	}
	if pads := ringtest.Pads(k.Recs); pads != 1 || k.Tail <= k.Cap {
		tb.Fatalf("ring has %d padding records and tail %d; want a ring that wrapped once", ringtest.Pads(k.Recs), k.Tail)
	}
	return k
}

// TestRecoverWrap damages a wrapped ring: its padding record, a record on
// each side of the ring's end, and all three (a stretch that crosses the
// end of the ring), and truncates it everywhere.
func TestRecoverWrap(t *testing.T) {
	var padAt int
	for i, c := range wrappedRing(t).Recs {
		if c.Pad() {
			padAt = i
		}
	}
	for _, tc := range []struct {
		name    string
		damaged []int // relative to the padding record
		d       recDamage
	}{
		{"padding header", []int{0}, recDamages[0]},
		{"padding checksum", []int{0}, recDamages[4]},
		{"record before the padding", []int{-1}, recDamages[8]},
		{"record after the padding", []int{1}, recDamages[8]},
		{"across the end of the ring", []int{-1, 0, 1}, recDamages[2]},
		{"padding and the first record of the lap", []int{0, 1}, recDamages[5]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := wrappedRing(t)
			bad := map[uint64]bool{}
			for _, i := range tc.damaged {
				c := k.Recs[padAt+i]
				k.mem[k.index(c.Pos, tc.d.off(c))] ^= tc.d.xor
				bad[c.Pos] = true
			}
			seqs, torn := ringtest.Expect(k.ahead(), func(c ringtest.Rec) bool { return bad[c.Pos] })
			recoverAndDrain(t, k.mem, seqs, torn)
			// The ring goes on working across more laps.
			r := attachT(t, k.mem, newEnv(), 2)
			for i := range 100 {
				m := ckMsg(1000+i, 100+i*7%300)
				if err := put(r, m); err != nil {
					t.Fatalf("Put %d after Recover: %v", i, err)
				}
				if got, err := get(r); err != nil || !bytes.Equal(got, m) {
					t.Fatalf("Get %d after Recover = %d bytes, %v", i, len(got), err)
				}
			}
		})
	}
	truncations(t, wrappedRing(t))
}

// TestRecoverHeld: records held by Receive (free below head) are given back
// and come first; records marked done below head are not delivered again;
// a record below head still marked ready (its take's store never reached the
// disk) is given back; a taken record whose delivery entry was lost gets
// one; and when damage covers head, head moves to the end of the damage.
func TestRecoverHeld(t *testing.T) {
	build := func(t *testing.T) *ringTracker {
		k := filledRing(t, 12, 0)
		k.take(true)  // 0: held
		k.take(false) // 1: done
		k.take(true)  // 2: held
		k.take(false) // 3: done
		k.take(false) // 4: done
		return k
	}
	t.Run("held", func(t *testing.T) {
		k := build(t)
		recoverAndDrain(t, k.mem, []int{0, 2, 5, 6, 7, 8, 9, 10, 11}, 0)
	})
	t.Run("done store lost", func(t *testing.T) {
		k := build(t)
		pos := k.Recs[3].Pos
		storeHeader(k.mem[RingOffset:], pos&(k.Cap-1), withState(loadHeader(k.mem[RingOffset:], pos&(k.Cap-1)), stateReady, 0))
		recoverAndDrain(t, k.mem, []int{0, 2, 3, 5, 6, 7, 8, 9, 10, 11}, 0)
	})
	t.Run("entry lost", func(t *testing.T) {
		k := build(t)
		clear(k.mem[EntryOffset : EntryOffset+4*EntrySize])
		recoverAndDrain(t, k.mem, []int{0, 2, 5, 6, 7, 8, 9, 10, 11}, 0)
	})
	t.Run("damage across head", func(t *testing.T) {
		k := build(t)
		for _, i := range []int{4, 5, 6} {
			k.mem[k.index(k.Recs[i].Pos, DurableHeaderBytes+k.Recs[i].N/2)] ^= 0xFF
		}
		recoverAndDrain(t, k.mem, []int{0, 2, 7, 8, 9, 10, 11}, 1)
	})
	t.Run("head inside a record", func(t *testing.T) {
		k := build(t)
		setWord64(k.mem, offHead, k.Recs[4].Pos+DurableHeaderBytes)
		recoverAndDrain(t, k.mem, []int{0, 2, 4, 5, 6, 7, 8, 9, 10, 11}, 0)
	})
}

// TestRecoverGivesBackAtOnce: a message recovery gives back must be
// deliverable at once, whatever deadline the deliveries entry it reuses
// held before (here the lease of an earlier, acknowledged delivery).
func TestRecoverGivesBackAtOnce(t *testing.T) {
	k := filledRing(t, 6, 0)
	// Entry 0 held message 0 for an hour, then was acknowledged.
	_, d, err := k.r.Receive(nil, time.Hour, Try)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.r.Ack(d); err != nil {
		t.Fatal(err)
	}
	k.taken++
	k.take(true)  // 1: held, in entry 1
	k.take(false) // 2: marked done
	// The store marking 2 done never reached the disk.
	idx := k.Recs[2].Pos & (k.Cap - 1)
	storeHeader(k.mem[RingOffset:], idx, withState(loadHeader(k.mem[RingOffset:], idx), stateReady, 0))
	if _, err := Recover(k.mem); err != nil {
		t.Fatal(err)
	}
	r := attachT(t, k.mem, newEnv(), 1)
	var got []int
	for range 6 {
		m, err := get(r)
		if err != nil {
			break
		}
		seq, _ := ckParse(m)
		got = append(got, seq)
	}
	if want := []int{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("after Recover, Gets return %v; want %v at once", got, want)
	}
}

// TestRecoverBadPositions: positions no writer could leave give ErrCorrupt,
// and Recover changes nothing.
func TestRecoverBadPositions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch func(k *ringTracker, head uint64)
	}{
		{"tail below head", func(k *ringTracker, h uint64) { setWord64(k.mem, offTail, h-DurableHeaderBytes) }},
		{"tail a ring past head", func(k *ringTracker, h uint64) { setWord64(k.mem, offTail, h+k.Cap+DurableHeaderBytes) }},
		{"tail unaligned", func(k *ringTracker, h uint64) { setWord64(k.mem, offTail, k.Tail+8) }},
		{"tail far beyond", func(k *ringTracker, h uint64) { setWord64(k.mem, offTail, 1<<62) }},
		{"head past tail", func(k *ringTracker, h uint64) { setWord64(k.mem, offHead, k.Tail+DurableHeaderBytes) }},
		{"head unaligned", func(k *ringTracker, h uint64) {
			setWord32(k.mem, offInFlight, 1)
			setWord64(k.mem, offFree, 0)
			setWord64(k.mem, offHead, h+8)
		}},
		{"head below free", func(k *ringTracker, h uint64) {
			setWord32(k.mem, offInFlight, 1)
			setWord64(k.mem, offFree, h)
			setWord64(k.mem, offHead, h-DurableHeaderBytes)
		}},
		{"free unaligned", func(k *ringTracker, h uint64) {
			setWord32(k.mem, offInFlight, 1)
			setWord64(k.mem, offFree, 8)
		}},
		{"free past tail", func(k *ringTracker, h uint64) {
			setWord32(k.mem, offInFlight, 1)
			setWord64(k.mem, offFree, k.Tail+DurableHeaderBytes)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := filledRing(t, 10, 2)
			tc.patch(k, word64(k.mem, offHead))
			before := bytes.Clone(k.mem)
			torn, err := Recover(k.mem)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Recover = %d, %v; want %v", torn, err, ErrCorrupt)
			}
			if !bytes.Equal(k.mem, before) {
				t.Errorf("Recover changed the memory before failing")
			}
		})
	}
}

// TestRecoverBadIdentity: a damaged identity gives ErrIncompatible or
// ErrCorrupt, and Recover changes nothing.
func TestRecoverBadIdentity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch func(mem []byte) []byte
		want  error
	}{
		{"magic", func(m []byte) []byte { m[0] ^= 1; return m }, ErrIncompatible},
		{"version", func(m []byte) []byte { setWord32(m, offVersion, Version+1); return m }, ErrIncompatible},
		{"byte order", func(m []byte) []byte { setWord32(m, offByteOrder, 0x04030201); return m }, ErrIncompatible},
		{"unknown flag", func(m []byte) []byte { setWord32(m, offFlags, FlagDurable|4); return m }, ErrIncompatible},
		{"capacity not a power of two", func(m []byte) []byte { setWord64(m, offCapacity, 1<<14+16); return m }, ErrCorrupt},
		{"capacity over the memory", func(m []byte) []byte { setWord64(m, offCapacity, 1<<15); return m }, ErrCorrupt},
		{"capacity zero", func(m []byte) []byte { setWord64(m, offCapacity, 0); return m }, ErrCorrupt},
		{"max message zero", func(m []byte) []byte { setWord64(m, offMaxMsg, 0); return m }, ErrCorrupt},
		{"max message over half the ring", func(m []byte) []byte { setWord64(m, offMaxMsg, 1<<13); return m }, ErrCorrupt},
		{"ring offset", func(m []byte) []byte { setWord32(m, offRingOff, RingOffset+8); return m }, ErrCorrupt},
		{"memory short of the ring", func(m []byte) []byte { return m[:len(m)-16] }, ErrCorrupt},
		{"memory of a page", func(m []byte) []byte { return m[:PageSize] }, ErrCorrupt},
		{"memory under a page", func(m []byte) []byte { return m[:PageSize-1] }, ErrIncompatible},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := filledRing(t, 10, 2)
			mem := tc.patch(k.mem)
			before := bytes.Clone(k.mem)
			torn, err := Recover(mem)
			if !errors.Is(err, tc.want) {
				t.Errorf("Recover = %d, %v; want %v", torn, err, tc.want)
			}
			if !bytes.Equal(k.mem, before) {
				t.Errorf("Recover changed the memory before failing")
			}
		})
	}
}

// TestRecoverTwoRecordsOneEntry: two taken records naming the same delivery
// entry are both given back.
func TestRecoverTwoRecordsOneEntry(t *testing.T) {
	k := filledRing(t, 6, 0)
	k.take(true)
	k.take(true)
	for _, i := range []int{0, 1} {
		idx := k.Recs[i].Pos & (k.Cap - 1)
		storeHeader(k.mem[RingOffset:], idx, withState(loadHeader(k.mem[RingOffset:], idx), stateTaken, 7))
	}
	// Pages of one flush reach the disk in any order, so an entry number
	// freed by an Ack and reused by another Receive can appear twice:
	// recovery gives both messages back, with entries of their own.
	if torn, err := Recover(k.mem); torn != 0 || err != nil {
		t.Fatalf("Recover = %d, %v; want 0, nil", torn, err)
	}
	r := attachT(t, k.mem, newEnv(), 1)
	if c := counts(t, r); c.Len != 6 || c.InFlight != 2 {
		t.Errorf("after recovery Len %d, InFlight %d; want 6, 2", c.Len, c.InFlight)
	}
	var ends []int
	if _, n, err := r.GetBatch(nil, &ends, 10, 0, Try); n != 6 || err != nil {
		t.Errorf("Get = %d, %v; want all 6 messages", n, err)
	}
}

// TestRecoverTornAccumulates: Torn counts the stretches of every recovery.
func TestRecoverTornAccumulates(t *testing.T) {
	k := filledRing(t, 10, 0)
	k.mem[k.index(k.Recs[2].Pos, 20)] ^= 1
	k.mem[k.index(k.Recs[5].Pos, 20)] ^= 1
	if torn, err := Recover(k.mem); torn != 2 || err != nil {
		t.Fatalf("first Recover = %d, %v; want 2", torn, err)
	}
	r := attachT(t, k.mem, newEnv(), 1)
	if err := put(r, ckMsg(10, 50)); err != nil {
		t.Fatal(err)
	}
	tail := word64(k.mem, offTail)
	k.mem[RingOffset+int((tail-DurableRecordSize(50))&(k.Cap-1))+20] ^= 1
	if torn, err := Recover(k.mem); torn != 1 || err != nil {
		t.Fatalf("second Recover = %d, %v; want 1", torn, err)
	}
	if c := counts(t, r); c.Torn != 3 || c.Len != 8 {
		t.Errorf("Counts: Torn %d, Len %d; want 3, 8", c.Torn, c.Len)
	}
}

// The fuzz target's queue: a 4 KiB durable ring.
const (
	recoverFuzzCap = MinCapacity
	recoverFuzzMax = 1024
)

// recoverFuzzRegion maps a fuzz offset onto the bytes Recover reads besides
// the identity: the header's hot words, the first deliveries entries, and
// the ring.
func recoverFuzzRegion(off int) int {
	const hdr, ents = fuzzHdr - 64, 8 * EntrySize
	off %= hdr + ents + recoverFuzzCap
	switch {
	case off < hdr:
		return 64 + off
	case off < hdr+ents:
		return EntryOffset + off - hdr
	}
	return RingOffset + off - hdr - ents
}

// recoverFuzzQueue returns a durable queue that puts and takes have moved
// around the ring: fill messages of assorted sizes put, drain taken by Get,
// and hold of the rest taken by Receive and left held.
func recoverFuzzQueue(tb testing.TB, fill, drain, hold uint8) []byte {
	mem := newDurableMem(tb, recoverFuzzCap, recoverFuzzMax)
	r := attachT(tb, mem, newEnv(), 0)
	seq := 0
	for range int(fill) {
		m := ckMsg(seq, 8+seq*37%400)
		if err := put(r, m); err == ErrFull {
			if _, err := get(r); err != nil {
				tb.Fatal(err)
			}
			err = put(r, m)
		}
		seq++
	}
	for range int(drain) {
		if _, err := get(r); err != nil {
			break
		}
	}
	for range int(hold % 8) {
		if _, _, err := r.Receive(nil, time.Hour, Try); err != nil {
			break
		}
	}
	return mem
}

// FuzzRecover writes fuzz bytes over a durable queue's positions, counters,
// deliveries entries and records, then recovers it: Recover either fails
// with ErrCorrupt or leaves a ring from which Get never returns a message
// whose own checksum fails, and that a second Recover finds undamaged.
// Nothing may panic, hang or write past the memory.
func FuzzRecover(f *testing.F) {
	chunk := func(off int, data ...byte) []byte {
		return append([]byte{byte(off >> 8), byte(off), byte(len(data))}, data...)
	}
	ringAt := func(i int) int { return fuzzHdr - 64 + 8*EntrySize + i }
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	f.Add(uint8(10), uint8(0), uint8(0), []byte(nil))
	f.Add(uint8(30), uint8(10), uint8(3), []byte(nil))
	f.Add(uint8(10), uint8(2), uint8(0), chunk(ringAt(100), 0xff, 0xff))
	f.Add(uint8(10), uint8(2), uint8(1), chunk(ringAt(0), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(uint8(40), uint8(30), uint8(2), chunk(ringAt(4000), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20))
	f.Add(uint8(10), uint8(0), uint8(0), chunk(offTail-64, u64(1<<12)...))
	f.Add(uint8(10), uint8(3), uint8(2), chunk(offHead-64, u64(16)...))
	f.Add(uint8(10), uint8(3), uint8(2), chunk(offFree-64, u64(0)...))
	f.Add(uint8(10), uint8(3), uint8(2), chunk(offInFlight-64, 0, 0, 0, 0))
	f.Add(uint8(10), uint8(3), uint8(2), chunk(fuzzHdr-64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0))
	f.Add(uint8(10), uint8(0), uint8(0), chunk(ringAt(4), 0x03, 0x10))
	f.Add(uint8(10), uint8(0), uint8(0), chunk(ringAt(0), 0xf0, 0x0f, 0, 0, 0x02, 0, 0, 0))
	f.Fuzz(func(t *testing.T, fill, drain, hold uint8, patch []byte) {
		mem := recoverFuzzQueue(t, fill, drain, hold)
		for p := patch; len(p) >= 3; {
			off := int(binary.BigEndian.Uint16(p))
			n := min(int(p[2]), len(p)-3)
			for i, b := range p[3 : 3+n] {
				mem[recoverFuzzRegion(off+i)] = b
			}
			p = p[3+n:]
		}
		withDeadline(t, "recovery", func() {
			if _, err := Recover(mem); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					failNow(t, "Recover: got %v; want nil or %v", err, ErrCorrupt)
				}
				return
			}
			again := bytes.Clone(mem)
			r, err := Attach(mem, int64(len(mem)), newEnv(), 1, 2)
			if err != nil {
				failNow(t, "Attach after Recover: %v", err)
			}
			for range recoverFuzzCap/DurableHeaderBytes + 8 {
				m, err := r.Get(nil, Try)
				if err != nil {
					if !isSentinel(err) {
						failNow(t, "Get after Recover: %v", err)
					}
					if err != ErrEmpty && err != io.EOF {
						t.Logf("Get after Recover: %v", err)
					}
					break
				}
				if _, ok := ckParse(m); !ok {
					failNow(t, "Get after Recover returned a damaged message of %d bytes: %.32x", len(m), m)
				}
			}
			if torn, err := Recover(again); torn != 0 || err != nil {
				failNow(t, "Recover of a recovered queue = %d, %v; want 0, nil", torn, err)
			}
		})
		checkGuard(t, mem)
	})
}

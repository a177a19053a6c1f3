package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"
)

const (
	fuzzCap = MinCapacity
	fuzzMax = 1024
	// fuzzHdr is how much of the header a fuzz input may overwrite: every
	// word past the identity lies below it.
	fuzzHdr   = (offRecount + 4 + 63) &^ 63
	fuzzTable = 4 * SlotSize // the first process slots
	// A fuzz case does a few dozen operations on a 4 KiB ring; one that
	// runs this long is stuck.
	fuzzHang = 5 * time.Second
)

// fuzzRegion maps a fuzz offset onto the bytes of a queue that a fuzz input
// may overwrite: the header's hot words, the first process slots and the
// ring.
func fuzzRegion(off int) int {
	const hdr, table = fuzzHdr, fuzzTable
	off %= hdr + table + fuzzCap
	switch {
	case off < hdr:
		return off
	case off < hdr+table:
		return TableOffset + off - hdr
	}
	return RingOffset + off - hdr - table
}

// patchMemory overwrites mem as patch says. patch[0]%3 selects how:
//
//	0: a list of chunks: 2-byte offset (into fuzzRegion), 1-byte length, bytes
//	1: the rest of patch replaces the header from byte 0, identity included
//	2: the rest of patch replaces the header from byte 64 (the hot words),
//	   then, past the first fuzzHdr bytes, the first slots and the ring
func patchMemory(mem, patch []byte) {
	if len(patch) == 0 {
		return
	}
	mode, p := patch[0]%3, patch[1:]
	switch mode {
	case 0:
		for len(p) >= 3 {
			off := fuzzRegion(int(binary.BigEndian.Uint16(p)))
			n := int(p[2])
			p = p[3:]
			n = min(n, len(p))
			for i := 0; i < n; i++ {
				// Consecutive bytes, each mapped, so a chunk may cross
				// from the header into the ring.
				mem[fuzzRegion(fuzzRegionIndex(off)+i)] = p[i]
			}
			p = p[n:]
		}
	case 1, 2:
		start := 0
		if mode == 2 {
			start = 64
		}
		for i, b := range p {
			mem[fuzzRegion(start+i)] = b
		}
	}
}

// fuzzRegionIndex inverts fuzzRegion for an offset it returned.
func fuzzRegionIndex(off int) int {
	const hdr, table = fuzzHdr, fuzzTable
	switch {
	case off < hdr:
		return off
	case off < RingOffset:
		return off - TableOffset + hdr
	}
	return off - RingOffset + hdr + table
}

// fuzzQueue returns a queue holding fill-drain messages of assorted sizes,
// written and partly read by a ring in slot 0 that has since died.
func fuzzQueue(tb testing.TB, fill, drain uint8) []byte {
	mem := newMem(tb, fuzzCap, fuzzMax)
	p := attachT(tb, mem, newEnv(), 0)
	for i := 0; i < int(fill); i++ {
		if err := put(p, msgOf(i, i*37%300)); err != nil {
			if err != ErrFull {
				tb.Fatal(err)
			}
			if _, err := get(p); err != nil {
				tb.Fatal(err)
			}
		}
	}
	for i := 0; i < int(drain); i++ {
		if _, err := get(p); err != nil {
			break
		}
	}
	return mem
}

// failNow marks tb failed and ends the calling goroutine, which runs the
// fuzz operations apart from the test's goroutine (see withDeadline).
func failNow(tb testing.TB, format string, args ...any) {
	tb.Helper()
	tb.Errorf(format, args...)
	runtime.Goexit()
}

// checkErr fails tb unless err is nil or one of the package's sentinels.
func checkErr(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil && !isSentinel(err) {
		failNow(tb, "%s: got %v; want nil or a package error", what, err)
	}
}

// runOps runs the operations ops encodes on r, with try set, and checks
// that every error is a package sentinel, every result is plausible, and
// that once a call returned ErrCorrupt every later call does too (the
// queue's corrupt state is sticky).
func runOps(tb testing.TB, r *Ring, ops []byte) {
	var stuck error // the first ErrCorrupt
	checkErr := func(what string, err error) {
		tb.Helper()
		checkErr(tb, what, err)
		switch {
		case stuck != nil && !errors.Is(err, ErrCorrupt) && err != ErrTooLarge: // an argument's error comes first
			failNow(tb, "%s after %q: got %v; want %v", what, stuck, err, ErrCorrupt)
		case stuck == nil && errors.Is(err, ErrCorrupt):
			stuck = err
		}
	}
	next := func() int {
		if len(ops) == 0 {
			return 0
		}
		b := ops[0]
		ops = ops[1:]
		return int(b)
	}
	for i := 0; i < 64 && len(ops) > 0; i++ {
		switch op := next(); op % 8 {
		case 0, 1:
			checkErr("Put", r.Put(msgOf(i, next()*5), Try))
		case 2:
			msgs := [][]byte{msgOf(i, next()), msgOf(i+1, next()*4), msgOf(i+2, next()*4)}
			n, err := r.PutBatch(msgs, Try)
			checkErr("batch Put", err)
			if n > 3 || (n > 0) != (err == nil) {
				failNow(tb, "batch Put = %d, %v", n, err)
			}
		case 3, 4:
			out, err := r.Get(nil, Try)
			checkErr("Get", err)
			if uint64(len(out)) > r.MaxMessage() {
				failNow(tb, "Get = %d bytes, %v", len(out), err)
			}
		case 5:
			var ends []int
			max := next()%8 + 1
			out, n, err := r.GetBatch(nil, &ends, max, next()*8, Try)
			checkErr("batch Get", err)
			if n > max || len(ends) != n || (n > 0) != (err == nil) {
				failNow(tb, "batch Get of at most %d = %d, %d ends, %v", max, n, len(ends), err)
			}
			start := 0
			for _, end := range ends {
				if end < start || end > len(out) || uint64(end-start) > r.MaxMessage() {
					failNow(tb, "batch Get ends %v over %d bytes", ends, len(out))
				}
				start = end
			}
		case 6:
			checkErr("Seal", r.Seal())
		case 7:
			c, err := r.Counts()
			checkErr("Counts", err)
			if (c.Corrupt != "") != (err != nil && stuck != nil) {
				failNow(tb, "Counts = %+v, %v: Corrupt and the error disagree", c, err)
			}
			if err == nil && c.Used > r.Capacity() {
				failNow(tb, "Counts = %+v: more bytes used than the capacity %d", c, r.Capacity())
			}
			_ = r.Len()
			_ = r.Procs()
			_ = r.HasData()
			_ = r.HasSpace(next())
			r.SweepWaiters()
		}
	}
}

// withDeadline runs f and fails tb if it has not returned within fuzzHang.
func withDeadline(tb testing.TB, what string, f func()) {
	tb.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		f()
	}()
	select {
	case p := <-done:
		if p != nil {
			tb.Fatalf("%s panicked: %v", what, p)
		}
	case <-time.After(fuzzHang):
		tb.Fatalf("%s hangs", what)
	}
}

// FuzzRingMemory overwrites parts of a valid queue's header, process table
// and ring with fuzz input, then attaches and operates on it: nothing may
// panic, hang, write outside the memory or return an error other than the
// package's sentinels.
func FuzzRingMemory(f *testing.F) {
	chunk := func(off int, data ...byte) []byte {
		return append([]byte{0, byte(off >> 8), byte(off), byte(len(data))}, data...)
	}
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	// positions returns a patch (mode 0) setting head, free and tail.
	positions := func(head, free, tail uint64) []byte {
		p := []byte{0}
		for _, w := range []struct {
			off int
			v   uint64
		}{{offHead, head}, {offFree, free}, {offTail, tail}} {
			p = append(p, byte(w.off>>8), byte(w.off), 8)
			p = binary.NativeEndian.AppendUint64(p, w.v)
		}
		return p
	}
	ops := []byte{0, 10, 3, 5, 2, 1, 2, 3, 4, 7, 0, 6, 0, 200, 3, 3, 3, 7, 9}
	f.Add(uint8(0), uint8(0), []byte(nil), ops)
	f.Add(uint8(20), uint8(5), []byte(nil), ops)
	f.Add(uint8(60), uint8(50), []byte(nil), ops)
	f.Add(uint8(20), uint8(0), chunk(offTail, u64(1<<20)...), ops)
	f.Add(uint8(20), uint8(0), chunk(offHead, u64(3)...), ops)
	f.Add(uint8(20), uint8(0), chunk(offFree, u64(9000)...), ops)
	f.Add(uint8(20), uint8(0), chunk(offProdLock, 0x01, 0x05, 0, 0), ops)
	f.Add(uint8(20), uint8(0), chunk(offConsLock, 0x01, 0x01, 0, 0), ops)
	f.Add(uint8(20), uint8(0), chunk(offRecount, 1), ops)
	f.Add(uint8(20), uint8(0), chunk(fuzzHdr, 0xff, 0xff, 0xff, 0xff), ops)                    // slot 0's generation
	f.Add(uint8(20), uint8(0), chunk(fuzzHdr+fuzzTable, 0x40, 0, 0, 0, 0x01, 0, 0, 0), ops)    // ring: a 64-byte ready record
	f.Add(uint8(20), uint8(0), chunk(fuzzHdr+fuzzTable, 0xf8, 0x0f, 0, 0, 0x02, 0, 0, 0), ops) // ring: a pad record over the ring
	f.Add(uint8(3), uint8(0), positions(0, 0, 0), ops)
	f.Add(uint8(3), uint8(0), positions(64, 64, 0), ops)
	f.Add(uint8(3), uint8(0), positions(24, 24, fuzzCap-3), ops)
	f.Add(uint8(3), uint8(0), positions(1<<64-fuzzCap, 1<<64-fuzzCap, 1<<64-8), ops)
	f.Add(uint8(3), uint8(0), append([]byte{2}, make([]byte, fuzzHdr+fuzzTable+64)...), ops) // hot words, slots and ring start zeroed
	f.Add(uint8(0), uint8(0), append([]byte{1}, []byte("MPQRING\x00\x02\x00\x00\x00")...), ops)
	f.Fuzz(func(t *testing.T, fill, drain uint8, patch, ops []byte) {
		mem := fuzzQueue(t, fill, drain)
		patchMemory(mem, patch)
		withDeadline(t, "operations", func() {
			r, err := Attach(mem, int64(len(mem)), newEnv(), 1, 2)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrIncompatible) {
					failNow(t, "Attach: got %v; want nil, %v or %v", err, ErrCorrupt, ErrIncompatible)
				}
				return
			}
			runOps(t, r, ops)
			if err := r.Close(nil); err != nil {
				failNow(t, "Close: %v", err)
			}
		})
		checkGuard(t, mem)
	})
}

// roundTripMessages returns the messages FuzzRingRoundTrip puts: each pair
// of bytes of sizes is a length (mod maxLen + 1), of bytes drawn from
// content, and the list repeats so that the ring wraps a few times.
func roundTripMessages(content, sizes []byte, maxLen int) [][]byte {
	var msgs [][]byte
	for i := 0; i+1 < len(sizes); i += 2 {
		n := int(binary.LittleEndian.Uint16(sizes[i:])) % (maxLen + 1)
		m := make([]byte, n)
		for j := range m {
			if len(content) > 0 {
				m[j] = content[(i+j)%len(content)] + byte(j/len(content))
			} else {
				m[j] = byte(i + j)
			}
		}
		msgs = append(msgs, m)
	}
	var all [][]byte
	for len(msgs) > 0 && len(all) < 100 {
		all = append(all, msgs...)
	}
	return all
}

// FuzzRingRoundTrip puts messages of arbitrary lengths and contents and
// checks that they come back identical and in order, across many wraps of a
// small ring, with single and batch operations. Lengths go up to half the
// ring (see TestMaxMessageFitsEmpty for larger ones).
func FuzzRingRoundTrip(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{0, 1, 7, 8, 9, 255, 16}, uint8(0))
	f.Add([]byte{0, 1, 2, 3}, []byte{0xff, 0x0f, 0xf8, 0x0f, 0x00}, uint8(1))
	f.Add([]byte("x"), bytes.Repeat([]byte{0x07, 0x08}, 40), uint8(3))
	f.Add([]byte(nil), []byte{0, 0, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, content, sizes []byte, mode uint8) {
		const maxLen = fuzzCap/2 - HeaderBytes
		mem := newMem(t, fuzzCap, maxLen)
		env := newEnv()
		r := attachT(t, mem, env, 0)
		c := attachT(t, mem, env, 1) // another process's view
		if mode&4 != 0 {
			c = r
		}
		all := roundTripMessages(content, sizes, maxLen)
		var want [][]byte
		getOne := func() {
			t.Helper()
			var ends []int
			max := 1
			if mode&2 != 0 {
				max = 1 + len(want)%5
			}
			out, n, err := c.GetBatch(nil, &ends, max, 0, Try)
			if err != nil || n == 0 {
				t.Fatalf("Get with %d queued = %d, %v", len(want), n, err)
			}
			start := 0
			for i, end := range ends {
				if !bytes.Equal(out[start:end], want[i]) {
					t.Fatalf("message %d came back as %d bytes %.16x...; want %d bytes %.16x...",
						i, end-start, out[start:end], len(want[i]), want[i])
				}
				start = end
			}
			want = want[n:]
		}
		for len(all) > 0 {
			var n int
			var err error
			if mode&1 != 0 {
				n, err = r.PutBatch(all[:min(len(all), 4)], Try)
			} else if err = r.Put(all[0], Try); err == nil {
				n = 1
			}
			switch err {
			case nil:
				want = append(want, all[:n]...)
				all = all[n:]
			case ErrFull:
				if len(want) == 0 {
					t.Fatalf("Put of %d bytes into an empty queue: %v", len(all[0]), err)
				}
				getOne()
			default:
				t.Fatalf("Put: %v", err)
			}
		}
		for len(want) > 0 {
			getOne()
		}
		if _, err := c.Get(nil, Try); err != ErrEmpty {
			t.Fatalf("Get after the last message: got %v; want %v", err, ErrEmpty)
		}
		cnt := counts(t, r)
		if cnt.Len != 0 || cnt.Used != 0 || cnt.Puts != cnt.Gets {
			t.Fatalf("Counts after draining = %+v", cnt)
		}
		checkGuard(t, mem)
	})
}

package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEnv stands in for the process table: a set of slots whose liveness
// locks some (simulated) process holds.
type fakeEnv struct {
	mu    sync.Mutex
	held  map[int]bool
	wakes atomic.Int64
}

func newEnv(held ...int) *fakeEnv {
	e := &fakeEnv{held: map[int]bool{}}
	for _, s := range held {
		e.held[s] = true
	}
	return e
}

func (e *fakeEnv) Held(slot int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.held[slot]
}

func (e *fakeEnv) set(slot int, held bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.held[slot] = held
}

func (e *fakeEnv) Yield() { runtime.Gosched() }

// Wake counts wake-ups; no goroutine ever sleeps on the words in these tests.
func (e *fakeEnv) Wake(addr *uint32) int {
	e.wakes.Add(1)
	return 0
}

// guardBytes follow the memory of every test queue; an operation that writes
// past the end of the ring changes them.
const guardBytes = 64

// newMem returns an initialized queue of the given geometry in a heap slice
// followed by guard bytes (see checkGuard): len(mem) is MinSize(capacity)
// and cap(mem) reaches over the guard bytes.
func newMem(tb testing.TB, capacity, maxMsg uint64) []byte {
	tb.Helper()
	return newMemOf(tb, Geometry{Capacity: capacity, MaxMessage: maxMsg})
}

// newMemOf is newMem for a queue of geometry g, created at a fixed time.
func newMemOf(tb testing.TB, g Geometry) []byte {
	tb.Helper()
	n := MinSize(g.Capacity)
	buf := make([]byte, n+guardBytes)
	for i := n; i < int64(len(buf)); i++ {
		buf[i] = 0xA5
	}
	mem := buf[:n]
	g.Created = time.Unix(1700000000, 42)
	if err := Init(mem, g); err != nil {
		tb.Fatalf("Init: %v", err)
	}
	return mem
}

// checkGuard fails tb if anything wrote past the end of mem.
func checkGuard(tb testing.TB, mem []byte) {
	tb.Helper()
	g := mem[len(mem) : len(mem)+guardBytes]
	for i, b := range g {
		if b != 0xA5 {
			tb.Fatalf("byte %d past the end of the queue memory was overwritten: % x", i, g)
		}
	}
}

func attachT(tb testing.TB, mem []byte, env Env, slot int) *Ring {
	tb.Helper()
	r, err := Attach(mem, int64(len(mem)), env, slot, 1000+slot)
	if err != nil {
		tb.Fatalf("Attach(slot %d): %v", slot, err)
	}
	return r
}

func put(r *Ring, msg []byte) error {
	err := r.Put(msg, Try)
	return err
}

func get(r *Ring) ([]byte, error) {
	out, err := r.Get(nil, Try)
	if err == nil && out == nil {
		out = []byte{}
	}
	return out, err
}

// tryOr is Try if try is set, else a Wait that blocks until the lock is
// released.
func tryOr(try bool) Wait {
	if try {
		return Try
	}
	return Block(nil)
}

func word64(mem []byte, off int) uint64       { return binary.NativeEndian.Uint64(mem[off:]) }
func setWord64(mem []byte, off int, v uint64) { binary.NativeEndian.PutUint64(mem[off:], v) }
func setWord32(mem []byte, off int, v uint32) { binary.NativeEndian.PutUint32(mem[off:], v) }

func counts(tb testing.TB, r *Ring) Counts {
	tb.Helper()
	c, err := r.Counts()
	if err != nil {
		tb.Fatalf("Counts: %v", err)
	}
	return c
}

func msgOf(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j*7 + 1)
	}
	return b
}

func TestInitReadGeometry(t *testing.T) {
	for _, g := range []Geometry{
		{Capacity: MinCapacity, MaxMessage: 1, Created: time.Unix(1, 0)},
		{Capacity: MinCapacity, MaxMessage: MaxMessageFor(MinCapacity, false), Created: time.Now()},
		{Capacity: 1 << 16, MaxMessage: 1 << 14, Created: time.Unix(0, 123456789)},
	} {
		mem := make([]byte, MinSize(g.Capacity))
		if err := Init(mem, g); err != nil {
			t.Fatalf("Init(%+v): %v", g, err)
		}
		got, err := ReadGeometry(mem, int64(len(mem)))
		if err != nil {
			t.Fatalf("ReadGeometry after Init(%+v): %v", g, err)
		}
		if got.Capacity != g.Capacity || got.MaxMessage != g.MaxMessage || !got.Created.Equal(g.Created) {
			t.Errorf("ReadGeometry = %+v; want %+v", got, g)
		}
		r := attachT(t, mem, newEnv(), 0)
		if r.Capacity() != g.Capacity || r.MaxMessage() != g.MaxMessage {
			t.Errorf("Capacity, MaxMessage = %d, %d; want %d, %d", r.Capacity(), r.MaxMessage(), g.Capacity, g.MaxMessage)
		}
		if c := counts(t, r); c != (Counts{}) {
			t.Errorf("Counts of a new queue = %+v; want zero", c)
		}
	}
}

func TestInitInvalid(t *testing.T) {
	for _, tc := range []struct {
		g   Geometry
		mem int64
	}{
		{Geometry{Capacity: 0, MaxMessage: 1}, MinSize(MinCapacity)},
		{Geometry{Capacity: MinCapacity / 2, MaxMessage: 1}, MinSize(MinCapacity)},
		{Geometry{Capacity: MinCapacity + 8, MaxMessage: 1}, MinSize(2 * MinCapacity)},
		{Geometry{Capacity: MaxCapacity * 2, MaxMessage: 1}, MinSize(MinCapacity)},
		{Geometry{Capacity: MinCapacity, MaxMessage: 0}, MinSize(MinCapacity)},
		{Geometry{Capacity: MinCapacity, MaxMessage: MaxMessageFor(MinCapacity, false) + 1}, MinSize(MinCapacity)},
		{Geometry{Capacity: MinCapacity, MaxMessage: 1 << 40}, MinSize(MinCapacity)},
		{Geometry{Capacity: 2 * MinCapacity, MaxMessage: 1}, MinSize(MinCapacity)}, // memory too small
	} {
		mem := make([]byte, tc.mem)
		if err := Init(mem, tc.g); err == nil {
			t.Errorf("Init(%+v) with %d bytes = nil; want an error", tc.g, tc.mem)
		}
		if !bytes.Equal(mem, make([]byte, tc.mem)) {
			t.Errorf("failed Init(%+v) wrote to memory", tc.g)
		}
	}
}

func TestReadGeometryErrors(t *testing.T) {
	valid := func() []byte {
		mem := make([]byte, MinSize(MinCapacity))
		if err := Init(mem, Geometry{Capacity: MinCapacity, MaxMessage: 100}); err != nil {
			t.Fatal(err)
		}
		return mem
	}
	for _, tc := range []struct {
		name  string
		patch func(mem []byte) []byte
		size  int64 // 0: len(mem)
		want  error
	}{
		{"short", func(m []byte) []byte { return m[:PageSize-1] }, 0, ErrIncompatible},
		{"zero", func(m []byte) []byte { clear(m); return m }, 0, ErrIncompatible},
		{"magic", func(m []byte) []byte { m[3] ^= 1; return m }, 0, ErrIncompatible},
		{"version", func(m []byte) []byte { setWord32(m, offVersion, Version+1); return m }, 0, ErrIncompatible},
		{"byte order", func(m []byte) []byte { setWord32(m, offByteOrder, 0x04030201); return m }, 0, ErrIncompatible},
		{"capacity not power of two", func(m []byte) []byte { setWord64(m, offCapacity, MinCapacity+8); return m }, 0, ErrCorrupt},
		{"capacity zero", func(m []byte) []byte { setWord64(m, offCapacity, 0); return m }, 0, ErrCorrupt},
		{"capacity huge", func(m []byte) []byte { setWord64(m, offCapacity, 1<<63); return m }, 0, ErrCorrupt},
		{"capacity over file", func(m []byte) []byte { setWord64(m, offCapacity, 2*MinCapacity); return m }, 0, ErrCorrupt},
		{"max message zero", func(m []byte) []byte { setWord64(m, offMaxMsg, 0); return m }, 0, ErrCorrupt},
		{"max message over ring", func(m []byte) []byte { setWord64(m, offMaxMsg, MinCapacity); return m }, 0, ErrCorrupt},
		{"max message huge", func(m []byte) []byte { setWord64(m, offMaxMsg, 1<<62); return m }, 0, ErrCorrupt},
		{"ring offset", func(m []byte) []byte { setWord32(m, offRingOff, RingOffset+8); return m }, 0, ErrCorrupt},
		{"max procs", func(m []byte) []byte { setWord32(m, offMaxProcs, 7); return m }, 0, ErrCorrupt},
		{"file truncated", func(m []byte) []byte { return m }, MinSize(MinCapacity) - 1, ErrCorrupt},
		{"file header only", func(m []byte) []byte { return m }, PageSize, ErrCorrupt},
	} {
		mem := tc.patch(valid())
		size := tc.size
		if size == 0 {
			size = int64(len(mem))
		}
		_, err := ReadGeometry(mem, size)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: ReadGeometry: got %v; want %v", tc.name, err, tc.want)
		}
		if len(mem) >= PageSize {
			_, err = Attach(mem, size, newEnv(), 0, 1)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: Attach: got %v; want %v", tc.name, err, tc.want)
			}
		}
	}
	// A mapping shorter than the ring (whatever the file size says).
	mem := valid()
	if _, err := Attach(mem[:len(mem)-8], int64(len(mem)), newEnv(), 0, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Attach of a short mapping: got %v; want %v", err, ErrCorrupt)
	}
	for _, slot := range []int{-1, MaxProcs} {
		if _, err := Attach(mem, int64(len(mem)), newEnv(), slot, 1); err == nil {
			t.Errorf("Attach(slot %d) = nil error; want an error", slot)
		}
	}
}

func TestPutGetOrder(t *testing.T) {
	mem := newMem(t, MinCapacity, 1000)
	r := attachT(t, mem, newEnv(), 0)
	if _, err := get(r); err != ErrEmpty {
		t.Fatalf("Get on an empty queue: got %v; want %v", err, ErrEmpty)
	}
	for round := 0; round < 50; round++ {
		var want [][]byte
		for i := 0; i < 10; i++ {
			m := msgOf(round*10+i, (round*10+i)%90)
			want = append(want, m)
			if err := put(r, m); err != nil {
				t.Fatalf("Put %d: %v", i, err)
			}
		}
		if got := r.Len(); got != 10 {
			t.Fatalf("Len = %d; want 10", got)
		}
		for i, w := range want {
			got, err := get(r)
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("Get %d = %x, %v; want %x, nil", i, got, err, w)
			}
		}
		if _, err := get(r); err != ErrEmpty {
			t.Fatalf("Get after draining: got %v; want %v", err, ErrEmpty)
		}
	}
	c := counts(t, r)
	if c.Puts != 500 || c.Gets != 500 || c.Len != 0 || c.Used != 0 {
		t.Errorf("Counts = %+v; want 500 puts and gets, nothing left", c)
	}
	checkGuard(t, mem)
}

// model is the FIFO a ring must behave as, with the ring's positions so that
// it predicts ErrFull exactly.
type model struct {
	cap, max   uint64
	head, tail uint64
	msgs       [][]byte
}

// fits reports whether a put of an n-byte message succeeds, and advances
// tail if it does.
func (m *model) put(msg []byte) bool {
	size := RecordSize(len(msg))
	idx := m.tail & (m.cap - 1)
	need := size
	if idx+size > m.cap {
		need += m.cap - idx
	}
	if m.tail+need-m.head > m.cap {
		return false
	}
	m.tail += need
	m.msgs = append(m.msgs, msg)
	return true
}

func (m *model) get() ([]byte, bool) {
	if len(m.msgs) == 0 {
		return nil, false
	}
	msg := m.msgs[0]
	m.msgs = m.msgs[1:]
	if len(m.msgs) == 0 {
		m.head = m.tail
	} else {
		// head moves past msg's record (and a padding record before it).
		size := RecordSize(len(msg))
		idx := m.head & (m.cap - 1)
		if idx+size > m.cap {
			m.head += m.cap - idx
		}
		m.head += size
	}
	return msg, true
}

func TestRingModel(t *testing.T) {
	const capacity = MinCapacity
	const maxAllowed = capacity/2 - HeaderBytes
	patterns := []struct {
		name string
		max  uint64
		size func(rng *rand.Rand, i int) int
	}{
		{"empty", 100, func(*rand.Rand, int) int { return 0 }},
		{"one", 100, func(*rand.Rand, int) int { return 1 }},
		{"seven", 100, func(*rand.Rand, int) int { return 7 }},
		{"eight", 100, func(*rand.Rand, int) int { return 8 }},
		{"nine", 100, func(*rand.Rand, int) int { return 9 }},
		{"cycle", 100, func(_ *rand.Rand, i int) int { return i % 101 }},
		{"random small", 64, func(rng *rand.Rand, _ int) int { return rng.IntN(65) }},
		{"random large", maxAllowed, func(rng *rand.Rand, _ int) int { return rng.IntN(maxAllowed + 1) }},
		{"max", maxAllowed, func(*rand.Rand, int) int { return maxAllowed }},
		{"just under max", maxAllowed, func(*rand.Rand, int) int { return maxAllowed - HeaderBytes }},
		{"third", maxAllowed, func(*rand.Rand, int) int { return capacity / 3 }},
		{"bimodal", maxAllowed, func(rng *rand.Rand, _ int) int {
			if rng.IntN(4) == 0 {
				return maxAllowed - rng.IntN(64)
			}
			return rng.IntN(24)
		}},
	}
	for _, p := range patterns {
		t.Run(p.name, func(t *testing.T) {
			for seed := uint64(0); seed < 4; seed++ {
				rng := rand.New(rand.NewPCG(seed, 7))
				mem := newMem(t, capacity, p.max)
				r := attachT(t, mem, newEnv(), 3)
				m := &model{cap: capacity, max: p.max}
				putBias := 1 + rng.IntN(3) // 1: balanced, higher: mostly full
				for i := 0; i < 3000; i++ {
					if rng.IntN(putBias+1) != 0 {
						msg := msgOf(i, p.size(rng, i))
						err := put(r, msg)
						if ok := m.put(msg); ok != (err == nil) || (!ok && err != ErrFull) {
							t.Fatalf("seed %d op %d: Put(%d bytes) with %d queued (tail %d head %d): got %v; model fits: %v",
								seed, i, len(msg), len(m.msgs), m.tail, m.head, err, ok)
						}
					} else {
						got, err := get(r)
						want, ok := m.get()
						if !ok {
							if err != ErrEmpty {
								t.Fatalf("seed %d op %d: Get on empty: got %v; want %v", seed, i, err, ErrEmpty)
							}
						} else if err != nil || !bytes.Equal(got, want) {
							t.Fatalf("seed %d op %d: Get = %d bytes, %v; want %d bytes", seed, i, len(got), err, len(want))
						}
					}
					c := counts(t, r)
					if c.Len != uint64(len(m.msgs)) || c.Used != m.tail-m.head {
						t.Fatalf("seed %d op %d: Counts = %+v; want Len %d, Used %d", seed, i, c, len(m.msgs), m.tail-m.head)
					}
				}
				for len(m.msgs) > 0 {
					want, _ := m.get()
					if got, err := get(r); err != nil || !bytes.Equal(got, want) {
						t.Fatalf("seed %d drain: Get = %d bytes, %v; want %d bytes", seed, len(got), err, len(want))
					}
				}
				checkGuard(t, mem)
			}
		})
	}
}

func TestFullBoundary(t *testing.T) {
	const capacity = MinCapacity
	mem := newMem(t, capacity, 256)
	r := attachT(t, mem, newEnv(), 0)
	msg := make([]byte, 56) // 64-byte records: exactly capacity/64 fit
	n := 0
	for ; n < capacity/64; n++ {
		if err := put(r, msgOf(n, 56)); err != nil {
			t.Fatalf("Put %d of %d: %v", n, capacity/64, err)
		}
	}
	if err := put(r, msg); err != ErrFull {
		t.Fatalf("Put into a full queue: got %v; want %v", err, ErrFull)
	}
	if err := put(r, nil); err != ErrFull {
		t.Fatalf("Put of an empty message into a full queue: got %v; want %v", err, ErrFull)
	}
	if c := counts(t, r); c.Used != capacity || c.Len != capacity/64 {
		t.Fatalf("Counts of a full queue = %+v; want Used %d, Len %d", c, capacity, capacity/64)
	}
	if got, err := get(r); err != nil || !bytes.Equal(got, msgOf(0, 56)) {
		t.Fatalf("Get = %x, %v; want first message", got, err)
	}
	if err := put(r, msgOf(n, 56)); err != nil {
		t.Fatalf("Put after one Get: %v", err)
	}
	if err := put(r, msg); err != ErrFull {
		t.Fatalf("Put into a full queue again: got %v; want %v", err, ErrFull)
	}
	checkGuard(t, mem)
}

// TestFullWrap: a record that does not fit before the end of the ring needs
// a padding record too: with 64 bytes free at the end and 64 at the start, a
// 120-byte record does not fit although 128 bytes are free.
func TestFullWrap(t *testing.T) {
	const capacity = MinCapacity
	mem := newMem(t, capacity, 256)
	r := attachT(t, mem, newEnv(), 0)
	for i := 0; i < capacity/64-1; i++ {
		if err := put(r, msgOf(i, 56)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := get(r); err != nil {
		t.Fatal(err)
	}
	if err := put(r, make([]byte, 112)); err != ErrFull {
		t.Fatalf("Put of a record split by the wrap: got %v; want %v", err, ErrFull)
	}
	if err := put(r, msgOf(100, 56)); err != nil {
		t.Fatalf("Put into the last 64 bytes: %v", err)
	}
	if err := put(r, msgOf(101, 56)); err != nil {
		t.Fatalf("Put into the first 64 bytes: %v", err)
	}
	if err := put(r, nil); err != ErrFull {
		t.Fatalf("Put into a full queue: got %v; want %v", err, ErrFull)
	}
	for i := 1; i < capacity/64-1; i++ {
		if got, err := get(r); err != nil || !bytes.Equal(got, msgOf(i, 56)) {
			t.Fatalf("Get %d = %x, %v", i, got, err)
		}
	}
	for i := 100; i < 102; i++ {
		if got, err := get(r); err != nil || !bytes.Equal(got, msgOf(i, 56)) {
			t.Fatalf("Get %d = %x, %v", i, got, err)
		}
	}
	checkGuard(t, mem)
}

func TestTooLarge(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	r := attachT(t, mem, newEnv(), 0)
	if err := put(r, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	before := bytes.Clone(mem)
	for _, tc := range []struct {
		msg  []byte
		msgs [][]byte
	}{
		{msg: make([]byte, 101)},
		{msg: make([]byte, MinCapacity)},
		{msgs: [][]byte{[]byte("a"), make([]byte, 101)}},
		{msgs: [][]byte{make([]byte, 1<<20)}},
	} {
		var n int
		var err error
		if tc.msgs == nil {
			err = r.Put(tc.msg, Try)
		} else {
			n, err = r.PutBatch(tc.msgs, Try)
		}
		if n != 0 || err != ErrTooLarge {
			t.Errorf("Put(%d bytes, %d msgs) = %d, %v; want 0, %v", len(tc.msg), len(tc.msgs), n, err, ErrTooLarge)
		}
	}
	if !bytes.Equal(mem, before) {
		t.Errorf("a Put of a message over the maximum changed the queue memory")
	}
	if got, err := get(r); err != nil || string(got) != "kept" {
		t.Errorf("Get = %q, %v; want %q, nil", got, err, "kept")
	}
	if err := put(r, make([]byte, 100)); err != nil {
		t.Errorf("Put of a maximum-size message: %v", err)
	}
}

func TestBatch(t *testing.T) {
	mem := newMem(t, MinCapacity, 1000)
	r := attachT(t, mem, newEnv(), 0)
	var msgs [][]byte
	for i := 0; i < 100; i++ {
		msgs = append(msgs, msgOf(i, i%50))
	}
	var queued [][]byte
	rest := msgs
	for len(rest) > 0 {
		n, err := r.PutBatch(rest, Try)
		if err != nil {
			if err != ErrFull || n != 0 {
				t.Fatalf("batch Put = %d, %v", n, err)
			}
		}
		queued = append(queued, rest[:n]...)
		rest = rest[n:]
		if len(rest) == 0 {
			break
		}
		// Check that a full batch put stopped exactly where a single put fails.
		if err := put(r, rest[0]); err != ErrFull {
			t.Fatalf("Put after a partial batch: got %v; want %v", err, ErrFull)
		}
		// Take some in a batch of at most 7, limited to 200 bytes.
		var ends []int
		buf, k, err := r.GetBatch(make([]byte, 0, 64), &ends, 7, 200, Try)
		if err != nil || k == 0 || k > 7 || len(ends) != k {
			t.Fatalf("batch Get = %d messages, %d ends, %v", k, len(ends), err)
		}
		if k > 1 && len(buf) > 200 {
			t.Fatalf("batch Get of %d messages returned %d bytes; limit 200", k, len(buf))
		}
		start := 0
		for i, end := range ends {
			if !bytes.Equal(buf[start:end], queued[i]) {
				t.Fatalf("batch message %d = %x; want %x", i, buf[start:end], queued[i])
			}
			start = end
		}
		queued = queued[k:]
	}
	// Drain with no limits.
	var ends []int
	buf, k, err := r.GetBatch(nil, &ends, 1<<30, 0, Try)
	if err != nil || k != len(queued) {
		t.Fatalf("final batch Get = %d, %v; want %d", k, err, len(queued))
	}
	start := 0
	for i, end := range ends {
		if !bytes.Equal(buf[start:end], queued[i]) {
			t.Fatalf("final batch message %d differs", i)
		}
		start = end
	}
	// The first message is taken even when it alone is over maxBytes.
	if err := put(r, make([]byte, 500)); err != nil {
		t.Fatal(err)
	}
	var ends2 []int
	if _, k, err := r.GetBatch(nil, &ends2, 5, 10, Try); k != 1 || err != nil {
		t.Fatalf("Get with maxBytes under the first message = %d, %v; want 1, nil", k, err)
	}
	if _, k, err := r.GetBatch(nil, &ends2, 5, 0, Try); k != 0 || err != ErrEmpty {
		t.Fatalf("batch Get of an empty queue = %d, %v; want 0, %v", k, err, ErrEmpty)
	}
	if n, err := r.PutBatch([][]byte{}, Try); n != 0 {
		t.Fatalf("Put of an empty batch = %d, %v; want 0", n, err)
	}
}

func TestSeal(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	r := attachT(t, mem, newEnv(), 0)
	for i := 0; i < 3; i++ {
		if err := put(r, msgOf(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if r.Sealed() {
		t.Fatal("Sealed before Seal")
	}
	if err := r.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if err := r.Seal(); err != nil {
		t.Fatalf("second Seal: %v", err)
	}
	if !r.Sealed() || !counts(t, r).Sealed {
		t.Fatal("not Sealed after Seal")
	}
	if err := put(r, []byte("x")); err != ErrSealed {
		t.Fatalf("Put after Seal: got %v; want %v", err, ErrSealed)
	}
	if n, err := r.PutBatch([][]byte{[]byte("x")}, Block(nil)); n != 0 || err != ErrSealed {
		t.Fatalf("batch Put after Seal = %d, %v; want 0, %v", n, err, ErrSealed)
	}
	// Another process sees the seal too.
	r2 := attachT(t, mem, newEnv(0), 1)
	if err := put(r2, []byte("x")); err != ErrSealed {
		t.Fatalf("Put from another ring after Seal: got %v; want %v", err, ErrSealed)
	}
	if !r.HasData() {
		t.Error("HasData of a sealed queue = false; want true")
	}
	for i := 0; i < 3; i++ {
		if got, err := get(r2); err != nil || !bytes.Equal(got, msgOf(i, 10)) {
			t.Fatalf("Get %d after Seal = %x, %v", i, got, err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := get(r); err != io.EOF {
			t.Fatalf("Get of a sealed, drained queue: got %v; want %v", err, io.EOF)
		}
	}
	var ends []int
	if _, n, err := r.GetBatch(nil, &ends, 10, 0, Block(nil)); n != 0 || err != io.EOF {
		t.Fatalf("blocking batch Get of a sealed, drained queue = %d, %v; want 0, %v", n, err, io.EOF)
	}
}

func TestClose(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	r := attachT(t, mem, newEnv(), 0)
	if err := put(r, []byte("x")); err != nil {
		t.Fatal(err)
	}
	r.SetWaiting(ForData)
	r.SetWaiting(ForSpace)
	released := 0
	if err := r.Close(func() { released++ }); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(func() { released++ }); err != ErrClosed {
		t.Fatalf("second Close: got %v; want %v", err, ErrClosed)
	}
	if released != 1 {
		t.Fatalf("release ran %d times; want 1", released)
	}
	if !r.Closed() {
		t.Fatal("Closed() = false after Close")
	}
	if r.HasWaiters(ForData) || r.HasWaiters(ForSpace) {
		t.Error("a closed ring left its waiter bits set")
	}
	if err := put(r, []byte("x")); err != ErrClosed {
		t.Errorf("Put after Close: got %v; want %v", err, ErrClosed)
	}
	if _, err := get(r); err != ErrClosed {
		t.Errorf("Get after Close: got %v; want %v", err, ErrClosed)
	}
	if err := r.Seal(); err != ErrClosed {
		t.Errorf("Seal after Close: got %v; want %v", err, ErrClosed)
	}
	if _, err := r.Counts(); err != ErrClosed {
		t.Errorf("Counts after Close: got %v; want %v", err, ErrClosed)
	}
	if n := r.Len(); n != 0 {
		t.Errorf("Len after Close = %d; want 0", n)
	}
	if r.Sealed() {
		t.Error("Seal after Close sealed the queue")
	}
	r2 := attachT(t, mem, newEnv(), 1)
	if got, err := get(r2); err != nil || string(got) != "x" {
		t.Errorf("Get from another ring after Close = %q, %v; want the message", got, err)
	}
}

func TestCountsLen(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	r := attachT(t, mem, newEnv(), 0)
	for i := 1; i <= 10; i++ {
		if err := put(r, msgOf(i, i)); err != nil {
			t.Fatal(err)
		}
		if r.Len() != i {
			t.Fatalf("Len = %d; want %d", r.Len(), i)
		}
	}
	for i := 0; i < 4; i++ {
		if _, err := get(r); err != nil {
			t.Fatal(err)
		}
	}
	r.AddWait()
	r.AddWait()
	c := counts(t, r)
	var used uint64
	for i := 5; i <= 10; i++ {
		used += RecordSize(i)
	}
	want := Counts{Puts: 10, Gets: 4, Waits: 2, Len: 6, Used: used}
	if c != want {
		t.Errorf("Counts = %+v; want %+v", c, want)
	}
	if !r.HasData() {
		t.Error("HasData = false with 6 messages")
	}
	if !r.HasSpace(100) || r.HasSpace(MinCapacity) {
		t.Errorf("HasSpace(100), HasSpace(%d) = %v, %v; want true, false", MinCapacity, r.HasSpace(100), r.HasSpace(MinCapacity))
	}
}

func TestProcsAndWaiters(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	env := newEnv(5, 70)
	r := attachT(t, mem, env, 5)
	r2 := attachT(t, mem, env, 70)
	_ = put(r, []byte("p"))
	_, _ = get(r2)
	ps := r.Procs()
	if len(ps) != 2 || ps[0].Slot != 5 || ps[1].Slot != 70 || ps[0].PID != 1005 || ps[1].PID != 1070 {
		t.Fatalf("Procs = %+v; want slots 5 and 70", ps)
	}
	if ps[0].Role != RoleProducer || ps[1].Role != RoleConsumer {
		t.Errorf("roles = %d, %d; want %d, %d", ps[0].Role, ps[1].Role, RoleProducer, RoleConsumer)
	}
	if r.HasWaiters(ForData) || r.HasWaiters(ForSpace) {
		t.Fatal("waiters in a new queue")
	}
	r2.SetWaiting(ForData)
	if !r.HasWaiters(ForData) || r.HasWaiters(ForSpace) {
		t.Fatal("data waiter not seen")
	}
	if n := r.SweepWaiters(); n != 0 {
		t.Fatalf("SweepWaiters with a live waiter cleared %d", n)
	}
	env.set(70, false) // the process of slot 70 dies
	if ps := r.Procs(); len(ps) != 1 {
		t.Errorf("Procs after a death = %+v; want one", ps)
	}
	if n := r.SweepWaiters(); n != 1 || r.HasWaiters(ForData) {
		t.Fatalf("SweepWaiters after a death cleared %d, HasWaiters = %v; want 1, false", n, r.HasWaiters(ForData))
	}
	r.SetWaiting(ForSpace)
	if n := r.SweepWaiters(); n != 0 || !r.HasWaiters(ForSpace) {
		t.Fatalf("SweepWaiters cleared its own bit")
	}
	r.ClearWaiting(ForSpace)
	if r.HasWaiters(ForSpace) {
		t.Fatal("ClearWaiting left the bit set")
	}
	// Re-attaching through a slot bumps its generation, so refs differ.
	r3 := attachT(t, mem, env, 70)
	if r3.Self() == r2.Self() || refSlot(r3.Self()) != 70 {
		t.Errorf("refs %#x, %#x of two attachments of slot 70", r2.Self(), r3.Self())
	}
}

// TestConcurrent runs producers and consumers, each with its own Ring on
// the same memory as if each were a process, and checks that every message
// arrives exactly once and each producer's messages arrive in order.
func TestConcurrent(t *testing.T) {
	perProducer := 20000
	if testing.Short() {
		perProducer = 2000
	}
	mem := newMem(t, MinCapacity, 200)
	env := newEnv()
	for s := 0; s < concProducers+concConsumers; s++ {
		env.set(s, true)
	}
	total := concProducers * perProducer
	var seen [concProducers][]atomic.Int32
	for p := range seen {
		seen[p] = make([]atomic.Int32, perProducer)
	}
	var taken atomic.Int64
	errc := make(chan error, concProducers+concConsumers)
	var wg sync.WaitGroup
	for p := 0; p < concProducers; p++ {
		r := attachT(t, mem, env, p)
		wg.Go(func() {
			if err := concProduce(r, p, perProducer); err != nil {
				errc <- fmt.Errorf("producer %d: %w", p, err)
			}
		})
	}
	for c := 0; c < concConsumers; c++ {
		r := attachT(t, mem, env, concProducers+c)
		wg.Go(func() {
			if err := concConsume(r, c, &seen, &taken, total); err != nil {
				errc <- fmt.Errorf("consumer %d: %w", c, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatalf("stuck: %d of %d messages taken", taken.Load(), total)
	}
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for p := range seen {
		for seq := range seen[p] {
			if n := seen[p][seq].Load(); n != 1 {
				t.Fatalf("message %d of producer %d delivered %d times", seq, p, n)
			}
		}
	}
	r := attachT(t, mem, env, MaxProcs-1)
	c := counts(t, r)
	if c.Puts != uint64(total) || c.Gets != uint64(total) || c.Len != 0 || c.Recovered != 0 {
		t.Errorf("Counts = %+v; want %d puts and gets, no recoveries", c, total)
	}
	checkGuard(t, mem)
}

// The processes of TestConcurrent.
const (
	concProducers = 4
	concConsumers = 3
)

// concProduce puts the n messages of producer p (its number and a
// sequence number, then filler), alone and in batches, trying and blocking.
func concProduce(r *Ring, p, n int) error {
	rng := rand.New(rand.NewPCG(uint64(p), 1))
	seq := 0
	for seq < n {
		var msgs [][]byte
		k := 1 + rng.IntN(4)
		for i := 0; i < k && seq+i < n; i++ {
			m := make([]byte, 8+rng.IntN(150))
			binary.LittleEndian.PutUint32(m, uint32(p))
			binary.LittleEndian.PutUint32(m[4:], uint32(seq+i))
			msgs = append(msgs, m)
		}
		var put int
		var err error
		if len(msgs) == 1 && rng.IntN(2) == 0 {
			if err = r.Put(msgs[0], tryOr(rng.IntN(2) == 0)); err == nil {
				put = 1
			}
		} else {
			put, err = r.PutBatch(msgs, tryOr(rng.IntN(2) == 0))
		}
		switch {
		case err == ErrFull || err == ErrBusy:
			runtime.Gosched()
		case err != nil:
			return fmt.Errorf("Put: %w", err)
		}
		seq += put
	}
	return nil
}

// concConsume takes batches of messages until taken reaches total,
// checking that each producer's come in order and counting each in seen.
func concConsume(r *Ring, c int, seen *[concProducers][]atomic.Int32, taken *atomic.Int64, total int) error {
	rng := rand.New(rand.NewPCG(uint64(c), 2))
	var last [concProducers]int
	for i := range last {
		last[i] = -1
	}
	var ends []int
	var buf []byte
	for taken.Load() < int64(total) {
		ends = ends[:0]
		var n int
		var err error
		buf, n, err = r.GetBatch(buf[:0], &ends, 1+rng.IntN(5), rng.IntN(2)*300, tryOr(rng.IntN(2) == 0))
		switch {
		case err == ErrEmpty || err == ErrBusy:
			runtime.Gosched()
			continue
		case err != nil:
			return fmt.Errorf("Get: %w", err)
		}
		start := 0
		for _, end := range ends[:n] {
			m := buf[start:end]
			start = end
			p, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
			if p >= concProducers || seq >= len(seen[0]) {
				return fmt.Errorf("got message %d/%d", p, seq)
			}
			if seq <= last[p] {
				return fmt.Errorf("message %d of producer %d after %d", seq, p, last[p])
			}
			last[p] = seq
			seen[p][seq].Add(1)
		}
		taken.Add(int64(n))
	}
	return nil
}

// TestConcurrentSeal checks that a put racing with Seal either lands before
// it (and is delivered) or fails with ErrSealed.
func TestConcurrentSeal(t *testing.T) {
	for round := 0; round < 20; round++ {
		mem := newMem(t, MinCapacity, 100)
		env := newEnv(0, 1, 2)
		var ok atomic.Int64
		var wg sync.WaitGroup
		for p := 0; p < 2; p++ {
			r := attachT(t, mem, env, p)
			wg.Go(func() {
				for {
					err := put(r, []byte{byte(p)})
					switch err {
					case nil:
						ok.Add(1)
					case ErrFull, ErrBusy:
						runtime.Gosched()
					case ErrSealed:
						return
					default:
						t.Errorf("Put: %v", err)
						return
					}
				}
			})
		}
		c := attachT(t, mem, env, 2)
		got := 0
		for {
			_, err := get(c)
			if err == io.EOF {
				break
			}
			if err == nil {
				got++
				if got == 50 {
					if err := c.Seal(); err != nil {
						t.Fatal(err)
					}
				}
			} else if err != ErrEmpty && err != ErrBusy {
				t.Fatal(err)
			}
		}
		wg.Wait()
		if int64(got) != ok.Load() {
			t.Fatalf("round %d: %d puts succeeded, %d messages got before EOF", round, ok.Load(), got)
		}
	}
}

// deadRef returns the ref a process attached through slot would have had,
// and leaves the slot as that process left it: attached, then dead.
func deadRef(t *testing.T, mem []byte, env *fakeEnv, slot int) uint32 {
	t.Helper()
	d := attachT(t, mem, env, slot)
	env.set(slot, false)
	return d.Self()
}

// holding returns a ring in slot 0 of a fresh queue holding n messages of
// size bytes (msgOf), and the env its processes are in.
func holding(t *testing.T, n, size int) ([]byte, *fakeEnv, *Ring) {
	t.Helper()
	mem := newMem(t, MinCapacity, 100)
	env := newEnv()
	r := attachT(t, mem, env, 0)
	for i := range n {
		if err := put(r, msgOf(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	return mem, env, r
}

func TestDeadProducerTakeover(t *testing.T) {
	mem, env, r := holding(t, 3, 20)
	// A producer in slot 9 died holding the lock after counting two puts it
	// never committed.
	ref := deadRef(t, mem, env, 9)
	setWord32(mem, offProdLock, ref)
	setWord64(mem, offPuts, word64(mem, offPuts)+2)
	if err := put(r, msgOf(3, 20)); err != nil {
		t.Fatalf("Put with the lock of a dead holder: %v", err)
	}
	if got := binary.NativeEndian.Uint32(mem[offProdLock:]); got != 0 {
		t.Fatalf("producer lock = %#x after Put; want 0", got)
	}
	c := counts(t, r)
	if c.Recovered != 1 || c.Len != 4 || c.Puts != 4 {
		t.Errorf("Counts after takeover = %+v; want Recovered 1, Len 4, Puts 4", c)
	}
	for i := 0; i < 4; i++ {
		if got, err := get(r); err != nil || !bytes.Equal(got, msgOf(i, 20)) {
			t.Fatalf("Get %d after takeover = %x, %v", i, got, err)
		}
	}
	// Seal also takes a dead holder's lock.
	setWord32(mem, offProdLock, deadRef(t, mem, env, 10))
	if err := r.Seal(); err != nil {
		t.Fatalf("Seal with the lock of a dead holder: %v", err)
	}
	if c := counts(t, r); c.Recovered != 2 || c.Len != 0 || !c.Sealed {
		t.Errorf("Counts after Seal takeover = %+v; want Recovered 2, Len 0, sealed", c)
	}
}

func TestDeadConsumerTakeover(t *testing.T) {
	mem, env, r := holding(t, 5, 30)
	if _, err := get(r); err != nil {
		t.Fatal(err)
	}
	// A consumer died holding the lock, after counting a get whose head
	// store it never made: the message stays for the next consumer.
	setWord32(mem, offConsLock, deadRef(t, mem, env, 200))
	setWord64(mem, offGets, word64(mem, offGets)+1)
	got, err := get(r)
	if err != nil || !bytes.Equal(got, msgOf(1, 30)) {
		t.Fatalf("Get with the lock of a dead holder = %x, %v; want message 1", got, err)
	}
	c := counts(t, r)
	if c.Recovered != 1 || c.Len != 3 {
		t.Errorf("Counts after takeover = %+v; want Recovered 1, Len 3", c)
	}
	if r.Len() != 3 {
		t.Errorf("Len = %d; want 3", r.Len())
	}
	// Both locks held by dead processes, found by Counts' recount.
	setWord32(mem, offProdLock, deadRef(t, mem, env, 201))
	setWord32(mem, offConsLock, deadRef(t, mem, env, 202))
	setWord32(mem, offRecount, 1)
	setWord64(mem, offPuts, 1000)
	if c := counts(t, r); c.Len != 3 || c.Recovered != 3 {
		t.Errorf("Counts with both locks dead = %+v; want Len 3, Recovered 3", c)
	}
}

func TestLiveHolderBusy(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	env := newEnv()
	r := attachT(t, mem, env, 0)
	holder := attachT(t, mem, env, 1)
	env.set(1, true)
	setWord32(mem, offProdLock, holder.Self())
	setWord32(mem, offConsLock, holder.Self())
	if err := put(r, []byte("x")); err != ErrBusy {
		t.Errorf("try-Put with a live holder: got %v; want %v", err, ErrBusy)
	}
	if _, err := get(r); err != ErrBusy {
		t.Errorf("try-Get with a live holder: got %v; want %v", err, ErrBusy)
	}
	done := make(chan struct{})
	close(done)
	if err := r.Put([]byte("x"), Block(done)); err != ErrCanceled {
		t.Errorf("Put with a live holder and a closed done: got %v; want %v", err, ErrCanceled)
	}
	if _, err := r.Get(nil, Block(done)); err != ErrCanceled {
		t.Errorf("Get with a live holder and a closed done: got %v; want %v", err, ErrCanceled)
	}
	// A blocking Put waits for the holder and proceeds when it releases.
	blocked := make(chan error, 1)
	go func() {
		err := r.Put([]byte("z"), Block(nil))
		blocked <- err
	}()
	time.Sleep(5 * time.Millisecond)
	select {
	case err := <-blocked:
		t.Fatalf("blocking Put returned %v while a live process held the lock", err)
	default:
	}
	setWord32Atomic(mem, offProdLock, 0)
	select {
	case err := <-blocked:
		if err != nil {
			t.Errorf("blocking Put after the holder released the lock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking Put still waits after the holder released the lock")
	}
	if c := counts(t, r); c.Recovered != 0 {
		t.Errorf("Recovered = %d with a live holder; want 0", c.Recovered)
	}
}

func setWord32Atomic(mem []byte, off int, v uint32) { atomic.StoreUint32(u32(mem, off), v) }

// TestLockHeldBySelf: a lock word naming the ring itself (impossible in a
// correct file) must give ErrCorrupt, not a wait on ourselves.
func TestLockHeldBySelf(t *testing.T) {
	for _, word := range []int{offProdLock, offConsLock} {
		for _, val := range []func(r *Ring) uint32{
			func(r *Ring) uint32 { return r.Self() },
			func(r *Ring) uint32 { return 5 }, // generation 0
		} {
			mem := newMem(t, MinCapacity, 100)
			r := attachT(t, mem, newEnv(), 3)
			if err := put(r, []byte("m")); err != nil {
				t.Fatal(err)
			}
			v := val(r)
			setWord32(mem, word, v)
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("lock word %d = %#x: %s: got %v; want %v", word, v, what, err, ErrCorrupt)
				}
			}
			done := make(chan error, 4)
			go func() {
				if word == offProdLock {
					done <- put(r, []byte("x"))
					done <- r.Seal()
				} else {
					_, err := get(r)
					done <- err
					_, err = r.Get(nil, Block(nil))
					done <- err
				}
				setWord32Atomic(mem, offRecount, 1)
				_, err := r.Counts()
				done <- err
			}()
			for i, what := range []string{"op", "blocking op", "Counts"} {
				select {
				case err := <-done:
					check(what, err)
				case <-time.After(10 * time.Second):
					t.Fatalf("lock word %d = %#x: step %d hangs", word, v, i)
				}
			}
		}
	}
}

// TestCorruptPositions checks that positions no writer could leave give
// ErrCorrupt.
func TestCorruptPositions(t *testing.T) {
	const capacity = MinCapacity
	for _, tc := range []struct {
		name             string
		head, tail, free uint64
		getErr, putErr   bool
	}{
		{"tail far below head and free", 1024, 0, 1024, true, true},
		{"tail over a ring past head", 0, capacity + 8, 0, true, true},
		{"tail unaligned", 0, 20, 0, true, false},
		{"head unaligned", 4, 64, 4, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t, capacity, 100)
			// Fill the ring with padding records, so a reader that loses
			// its place finds no end.
			for i := 0; i < capacity; i += 64 {
				binary.NativeEndian.PutUint64(mem[RingOffset+i:], makeHeader(64-HeaderBytes, statePad))
			}
			setWord64(mem, offHead, tc.head)
			setWord64(mem, offTail, tc.tail)
			setWord64(mem, offFree, tc.free)
			setWord64(mem, offPuts, 1)
			r := attachT(t, mem, newEnv(), 0)
			errc := make(chan error, 2)
			go func() {
				errc <- put(r, make([]byte, 50))
				_, err := get(r)
				errc <- err
			}()
			for i, want := range []bool{tc.putErr, tc.getErr} {
				select {
				case err := <-errc:
					if want && !errors.Is(err, ErrCorrupt) {
						t.Errorf("op %d: got %v; want %v", i, err, ErrCorrupt)
					}
					if err != nil && !isSentinel(err) {
						t.Errorf("op %d: got %v; want a package error", i, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("op %d hangs", i)
				}
			}
			checkGuard(t, mem)
		})
	}
}

// TestCorruptRecords checks records no writer could leave.
func TestCorruptRecords(t *testing.T) {
	const capacity = MinCapacity
	for _, tc := range []struct {
		name      string
		pos       uint64 // of the record, = head
		header    uint64
		tailDelta uint64
	}{
		{"free state", 0, 0, 64},
		{"unknown state", 0, makeHeader(8, 7), 64},
		{"ready over max", 0, makeHeader(101, stateReady), 200},
		{"ready past tail", 0, makeHeader(64, stateReady), 64},
		{"ready past ring", capacity - 64, makeHeader(100, stateReady), 128},
		{"pad past ring", 0, makeHeader(capacity, statePad), capacity},
		{"pad past ring end", capacity - 64, makeHeader(64, statePad), 128},
		{"pad length huge", 0, makeHeader(1<<32-1, statePad), capacity},
		{"owner bits with unknown state", 0, 1<<63 | makeHeader(8, 3), 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t, capacity, 100)
			binary.NativeEndian.PutUint64(mem[RingOffset+tc.pos:], tc.header)
			setWord64(mem, offHead, tc.pos)
			setWord64(mem, offFree, tc.pos)
			setWord64(mem, offTail, tc.pos+tc.tailDelta)
			setWord64(mem, offPuts, 1)
			setWord32(mem, offRecount, 1)
			r := attachT(t, mem, newEnv(), 0)
			if _, err := r.Counts(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Counts (recount): got %v; want %v", err, ErrCorrupt)
			}
			if _, err := get(r); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Get: got %v; want %v", err, ErrCorrupt)
			}
			if _, err := get(r); !errors.Is(err, ErrCorrupt) {
				t.Errorf("second Get: got %v; want %v", err, ErrCorrupt)
			}
		})
	}
}

// isSentinel reports whether err is one of the errors the package documents.
func isSentinel(err error) bool {
	for _, s := range []error{ErrCorrupt, ErrIncompatible, ErrFull, ErrEmpty, ErrSealed, ErrBusy, ErrTooLarge, io.EOF} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestPutValidatesTail: Put must validate the tail it reads before writing
// there. With a head (free) position that makes the put look like it fits
// without re-reading it, a tail below head, or one that is not 8-aligned
// just below the end of the ring, must give ErrCorrupt; the unaligned one must
// never write past the ring.
func TestPutValidatesTail(t *testing.T) {
	const capacity = MinCapacity
	for _, tc := range []struct {
		name             string
		head, tail, free uint64
		msg              int
	}{
		{"tail below head", 64, 0, 64, 56},
		{"tail unaligned near the end", 24, capacity - 3, 24, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t, capacity, 100)
			setWord64(mem, offHead, tc.head)
			setWord64(mem, offFree, tc.free)
			setWord64(mem, offTail, tc.tail)
			r := attachT(t, mem, newEnv(), 0)
			if err := put(r, make([]byte, tc.msg)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Put with head %d, tail %d, free %d: got %v; want %v", tc.head, tc.tail, tc.free, err, ErrCorrupt)
			}
			checkGuard(t, mem)
		})
	}
}

// TestPositionOverflow: positions just below 2^64 (only a corrupt file has
// them) must not let a record's end wrap around to 0: Get and the recount
// must report ErrCorrupt for a record that runs past tail, rather than
// deliver it or walk the ring for ever.
func TestPositionOverflow(t *testing.T) {
	const capacity = MinCapacity
	setup := func(state uint64) ([]byte, *Ring) {
		mem := newMem(t, capacity, MaxMessageFor(capacity, false))
		// One record filling the whole ring, at head; tail is 8 bytes short
		// of its end. (Only padding may be that long.)
		binary.NativeEndian.PutUint64(mem[RingOffset:], makeHeader(capacity-HeaderBytes, state))
		setWord64(mem, offHead, 1<<64-capacity)
		setWord64(mem, offFree, 1<<64-capacity)
		setWord64(mem, offTail, 1<<64-8)
		setWord64(mem, offPuts, 1)
		return mem, attachT(t, mem, newEnv(), 0)
	}
	t.Run("Get", func(t *testing.T) {
		_, r := setup(statePad)
		got, err := get(r)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get of a record overrunning tail = %d bytes, %v; want %v", len(got), err, ErrCorrupt)
		}
	})
	t.Run("recount", func(t *testing.T) {
		mem, r := setup(statePad)
		setWord32(mem, offRecount, 1)
		errc := make(chan error, 1)
		go func() {
			_, err := r.Counts()
			errc <- err
		}()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Counts (recount): got %v; want %v", err, ErrCorrupt)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Counts (recount) hangs: its position wrapped past 2^64 to 0")
			// Stop the loop, racing with it: it reads the record header
			// each round, and a free header is corrupt.
			atomic.StoreUint64(u64(mem, RingOffset), 0)
			<-errc
		}
	})
}

func TestWake(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	env := newEnv(1)
	r := attachT(t, mem, env, 0)
	other := attachT(t, mem, env, 1)
	if err := put(r, []byte("a")); err != nil || env.wakes.Load() != 0 {
		t.Fatalf("Put with no waiter: err %v, %d wakes; want nil, 0", err, env.wakes.Load())
	}
	other.SetWaiting(ForData)
	seq := atomic.LoadUint32(r.DataSeq())
	if err := put(r, []byte("b")); err != nil || env.wakes.Load() != 1 || atomic.LoadUint32(r.DataSeq()) == seq {
		t.Fatalf("Put with a data waiter: err %v, %d wakes, seq %d -> %d; want one wake and a new seq",
			err, env.wakes.Load(), seq, atomic.LoadUint32(r.DataSeq()))
	}
	other.ClearWaiting(ForData)
	other.SetWaiting(ForSpace)
	if _, err := get(r); err != nil || env.wakes.Load() != 2 {
		t.Fatalf("Get with a space waiter: err %v, %d wakes; want nil, 2", err, env.wakes.Load())
	}
	if _, err := get(r); err != nil || env.wakes.Load() != 3 {
		t.Fatalf("second Get with a space waiter: err %v, %d wakes; want nil, 3", err, env.wakes.Load())
	}
	// An empty Get frees nothing and wakes nobody.
	if _, err := get(r); err != ErrEmpty || env.wakes.Load() != 3 {
		t.Fatalf("empty Get: err %v, %d wakes; want %v, 3", err, env.wakes.Load(), ErrEmpty)
	}
	w := env.wakes.Load()
	if err := r.Seal(); err != nil || env.wakes.Load() < w+1 {
		t.Fatalf("Seal: err %v, %d wakes; want it to wake waiters", err, env.wakes.Load()-w)
	}
}

// TestMaxMessageFitsEmpty: every message a geometry accepts must fit an
// empty queue, wherever in the ring its positions are; otherwise a Put of it
// waits for ever on an empty queue. A record that does not fit between tail
// and the end of the ring goes at the start, after a padding record, and the
// two must fit the ring together.
func TestMaxMessageFitsEmpty(t *testing.T) {
	const capacity = MinCapacity
	for _, maxMsg := range []uint64{capacity/2 - HeaderBytes, capacity/2 + 8, capacity * 3 / 4, capacity - HeaderBytes} {
		g := Geometry{Capacity: capacity, MaxMessage: maxMsg}
		if g.Validate() != nil {
			continue // refusing the geometry is a fix too
		}
		for _, pos := range []uint64{0, 8, capacity / 4, capacity/2 - 8, capacity / 2, capacity - 8, 5*capacity + 1000} {
			mem := newMem(t, capacity, maxMsg)
			for _, off := range []int{offHead, offFree, offTail} {
				setWord64(mem, off, pos)
			}
			r := attachT(t, mem, newEnv(), 0)
			if err := put(r, make([]byte, maxMsg)); err != nil {
				t.Errorf("maximum message %d, capacity %d: Put into an empty queue at position %d: %v", maxMsg, capacity, pos, err)
			}
		}
	}
}

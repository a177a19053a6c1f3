package ring

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// everyCall runs each call of the ring that a program makes on a queue and
// returns the names of those that did not fail with ErrCorrupt. held, if
// its Token is not 0, is a delivery made before the damage, for Ack, Nack
// and Extend.
func everyCall(r *Ring, held Delivery) []string {
	var bad []string
	check := func(name string, err error) {
		if !errors.Is(err, ErrCorrupt) {
			bad = append(bad, name+": "+errString(err))
		}
	}
	check("Put", r.Put([]byte("x"), Try))
	check("Put (blocking)", r.Put([]byte("x"), Block(nil)))
	_, err := r.PutBatch([][]byte{[]byte("x"), []byte("y")}, Try)
	check("PutBatch", err)
	check("PutTrailerExclusive", r.PutTrailerExclusive([]byte("x"), []byte{1}, Try))
	_, err = r.Get(nil, Try)
	check("Get", err)
	_, err = r.Get(nil, Block(nil))
	check("Get (blocking)", err)
	var ends []int
	_, _, err = r.GetBatch(nil, &ends, 4, 0, Try)
	check("GetBatch", err)
	_, _, err = r.Receive(nil, time.Minute, Try)
	check("Receive", err)
	check("Seal", r.Seal())
	check("Sweep", r.Sweep())
	_, err = r.Counts()
	check("Counts", err)
	if held.Token != 0 {
		check("Extend", r.Extend(held, time.Now().Add(time.Hour).UnixNano()))
		check("Nack", r.Nack(held, 0))
		check("Ack", r.Ack(held))
	}
	return bad
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// TestCorruptSticky damages a queue in the places the ring validates; the
// first call that finds the damage records it, and from then on every call
// of every process attached (and of one that attaches later) fails with
// ErrCorrupt, saying what was found; the waiters of both directions are
// woken; Counts and Observe report it.
func TestCorruptSticky(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(mem []byte)
		want   string // in the error's text
	}{
		{"record header at head", func(mem []byte) {
			h := word64(mem, offHead)
			setWord64(mem, RingOffset+int(h&(1024*8-1)), 0xdeadbeefdeadbeef)
		}, "record at"},
		{"tail far beyond", func(mem []byte) { setWord64(mem, offTail, 1<<62) }, "positions"},
		{"head past tail", func(mem []byte) { setWord64(mem, offHead, word64(mem, offTail)+64) }, "positions"},
		{"sealed word", func(mem []byte) { setWord32(mem, offSealed, 0x5a5a5a5a) }, "sealed word holds 0x5a5a5a5a"},
		{"repair word", func(mem []byte) { setWord32(mem, offRepair, 0x80) }, "repair word holds 0x80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t, 1024*8, 512)
			env := newEnv(0, 1, 2)
			p, c := attachT(t, mem, env, 0), attachT(t, mem, env, 1)
			for i := range 6 {
				if err := put(p, msgOf(i, 40)); err != nil {
					t.Fatal(err)
				}
			}
			// A delivery held across the damage, in another process.
			_, held, err := c.Receive(nil, time.Minute, Try)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(mem)
			wakes := env.wakes.Load()
			// The first call to look finds it: a Get (the consumer) or a
			// Put (the producer), depending on where the damage is.
			_, errGet := c.Get(nil, Try)
			errPut := p.Put([]byte("after"), Try)
			if !errors.Is(errGet, ErrCorrupt) && !errors.Is(errPut, ErrCorrupt) {
				t.Fatalf("after damage: Get = %v, Put = %v; want one of them %v", errGet, errPut, ErrCorrupt)
			}
			if got := env.wakes.Load() - wakes; got < 2 {
				t.Errorf("finding the damage woke %d futex words; want both", got)
			}
			late := attachT(t, mem, env, 2)
			for _, v := range []struct {
				name string
				r    *Ring
				held Delivery
			}{{"producer", p, Delivery{}}, {"consumer", c, held}, {"attached later", late, Delivery{}}} {
				if bad := everyCall(v.r, v.held); len(bad) > 0 {
					t.Errorf("%s: calls that did not fail with ErrCorrupt:\n%s", v.name, strings.Join(bad, "\n"))
				}
			}
			err = p.Put([]byte("x"), Try)
			for _, w := range []string{tc.want, "every call on this queue", "mpq rm --force"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Put: got %q; want it to say %q", err, w)
				}
			}
			cnt, err := late.Counts()
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(cnt.Corrupt, tc.want) {
				t.Errorf("Counts = %+v, %v; want Corrupt saying %q and %v", cnt, err, tc.want, ErrCorrupt)
			}
			snap, err := Observe(mem, int64(len(mem)), env)
			if err != nil || !strings.Contains(snap.Counts.Corrupt, tc.want) {
				t.Errorf("Observe: Corrupt %q, %v; want it to say %q", snap.Counts.Corrupt, err, tc.want)
			}
			checkGuard(t, mem)
		})
	}
}

// TestCorruptRecordedOnce: the corrupt state says what the first process
// found, by which process: a second finder does not overwrite it.
func TestCorruptRecordedOnce(t *testing.T) {
	mem := newMem(t, 1024*8, 512)
	env := newEnv(0, 1)
	p, c := attachT(t, mem, env, 0), attachT(t, mem, env, 1)
	if err := put(p, msgOf(1, 40)); err != nil {
		t.Fatal(err)
	}
	setWord64(mem, RingOffset, 0x77<<stateShift)
	_, err := c.Get(nil, Try)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "found by process 1001") {
		t.Fatalf("Get: got %v; want %v found by process 1001", err, ErrCorrupt)
	}
	first := err.Error()
	setWord64(mem, offTail, 1<<62) // more damage, found by the producer
	if err := p.Put([]byte("x"), Try); err == nil || err.Error() != first {
		t.Errorf("Put: got %v; want the first finding %q", err, first)
	}
}

// TestCorruptNoEffectWhenSound: the words of the corrupt state stay zero
// through a queue's normal life, Seal included (its bit is its own).
func TestCorruptNoEffectWhenSound(t *testing.T) {
	mem := newMem(t, 1024*8, 512)
	r := attachT(t, mem, newEnv(0), 0)
	for i := range 50 {
		if err := put(r, msgOf(i, i*13%400)); err != nil {
			if _, err := get(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := r.Put([]byte("x"), Try); err != ErrSealed {
		t.Errorf("Put after Seal: got %v; want %v", err, ErrSealed)
	}
	if err := r.Corrupted(); err != nil {
		t.Errorf("Corrupted on a sound queue: %v", err)
	}
	if c := counts(t, r); c.Corrupt != "" || !c.Sealed {
		t.Errorf("Counts = %+v; want sealed and not corrupt", c)
	}
}

// TestRecoverClearsCorrupt: a durable queue found corrupt because of a
// damaged record is sound again after Recover, run as at an open by no
// other process: the damaged record is dropped, the others are delivered,
// and puts work. Damaged positions, which Recover cannot repair, fail it
// with an error that says to remove the queue.
func TestRecoverClearsCorrupt(t *testing.T) {
	mem := newMemOf(t, Geometry{Capacity: 1024 * 8, MaxMessage: 512, Durable: true})
	env := newEnv(0, 1)
	p, c := attachT(t, mem, env, 0), attachT(t, mem, env, 1)
	var want [][]byte
	for i := range 5 {
		m := msgOf(i, 40)
		if err := put(p, m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	if _, err := get(c); err != nil { // message 0
		t.Fatal(err)
	}
	// Damage the header of message 1, now at head.
	h := word64(mem, offHead)
	setWord64(mem, RingOffset+int(h), 0xdeadbeefdeadbeef)
	if _, err := get(c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of the damaged record: got %v; want %v", err, ErrCorrupt)
	}
	if err := put(p, []byte("x")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Put after the damage was found: got %v; want %v", err, ErrCorrupt)
	}
	p.Close(nil)
	c.Close(nil)

	torn, err := Recover(mem)
	if err != nil || torn != 1 {
		t.Fatalf("Recover = %d, %v; want 1 stretch dropped", torn, err)
	}
	r := attachT(t, mem, newEnv(), 0)
	if err := r.Corrupted(); err != nil {
		t.Fatalf("after Recover: %v", err)
	}
	if cnt := counts(t, r); cnt.Corrupt != "" || cnt.Torn != 1 || cnt.Len != 3 {
		t.Errorf("Counts after Recover = %+v; want sound, 1 torn, 3 waiting", cnt)
	}
	for _, m := range want[2:] {
		got, err := get(r)
		if err != nil || string(got) != string(m) {
			t.Fatalf("Get after Recover = %x, %v; want %x", got, err, m)
		}
	}
	if err := put(r, []byte("again")); err != nil {
		t.Fatalf("Put after Recover: %v", err)
	}
	if got, err := get(r); err != nil || string(got) != "again" {
		t.Fatalf("Get after Recover = %q, %v", got, err)
	}
	r.Close(nil)

	// Positions Recover cannot repair: it fails, and says what to do.
	setWord64(mem, offTail, 1<<62)
	if _, err := Recover(mem); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "mpq rm --force") {
		t.Errorf("Recover of damaged positions: got %v; want %v saying to remove the queue", err, ErrCorrupt)
	}
}

// TestCorruptWakesLockWaiter: a call waiting for a live holder of the
// producer lock gives up once another process finds the queue corrupt.
func TestCorruptWakesLockWaiter(t *testing.T) {
	mem := newMem(t, 1024*8, 512)
	env := newEnv(0, 1, 2)
	p, c := attachT(t, mem, env, 0), attachT(t, mem, env, 1)
	if err := put(p, msgOf(1, 40)); err != nil {
		t.Fatal(err)
	}
	// A live process (slot 2) holds the producer lock, for good.
	holder := attachT(t, mem, env, 2)
	setWord32(mem, offProdLock, holder.Self())
	done := make(chan error, 1)
	go func() { done <- p.Put([]byte("x"), Block(nil)) }()
	setWord64(mem, RingOffset, 0x77<<stateShift)
	if _, err := get(c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get: got %v; want %v", err, ErrCorrupt)
	}
	if err := <-done; !errors.Is(err, ErrCorrupt) {
		t.Errorf("Put waiting for the lock: got %v; want %v", err, ErrCorrupt)
	}
}

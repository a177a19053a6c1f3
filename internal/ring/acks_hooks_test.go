//go:build mpqhooks

package ring

import (
	"bytes"
	"testing"
	"time"
)

// TestRepairTakenAfterPadding: a consumer that dies inside Receive after
// marking its record taken, when it had first skipped the padding at the end
// of the ring, leaves head before the padding. The next holder of the lock
// must move head past the taken record (found by review: it reported the
// queue corrupt for good).
func TestRepairTakenAfterPadding(t *testing.T) {
	mem := newMem(t, MinCapacity, 1024)
	env := newEnv(0, 1)
	a := attachT(t, mem, env, 0)
	msg := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000) }
	for i := range 4 { // 4 records of 1008 bytes: 64 bytes left before the end
		if err := a.Put(msg(i), Try); err != nil {
			t.Fatal(err)
		}
	}
	var ends []int
	if _, n, err := a.GetBatch(nil, &ends, 4, 0, Try); n != 4 || err != nil {
		t.Fatalf("Get = %d, %v", n, err)
	}
	for i := 4; i < 6; i++ { // the first of these goes after padding
		if err := a.Put(msg(i), Try); err != nil {
			t.Fatal(err)
		}
	}
	b := attachT(t, mem, env, 1)
	restore := setTestHook(func(p string) {
		if p == HookTaken {
			panic(hookDeath{p})
		}
	})
	func() {
		defer func() {
			if _, ok := recover().(hookDeath); !ok {
				t.Fatal("Receive did not reach HookTaken")
			}
		}()
		b.Receive(nil, time.Hour, Try)
	}()
	restore()
	env.set(1, false) // b is dead, holding the consumer lock

	// Repair moves head past the taken record; the first sweep finds its
	// holder dead and gives it back, so it comes first, delivered twice.
	for _, want := range []struct {
		b     byte
		count uint32
	}{{4, 2}, {5, 1}} {
		data, d, err := a.Receive(nil, time.Hour, Block(nil))
		if err != nil {
			t.Fatalf("Receive after the death: %v", err)
		}
		if data[0] != want.b || d.Count != want.count {
			t.Errorf("Receive = message %d, count %d; want %d, count %d", data[0], d.Count, want.b, want.count)
		}
		if err := a.Ack(d); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.Receive(nil, time.Hour, Block(nil)); err != ErrEmpty {
		t.Errorf("Receive on the drained ring: %v; want ErrEmpty", err)
	}
	// The death took nothing from the counts: 6 put, 6 taken (the 4 by
	// Get, the 2 by Receive; redelivery is not another take).
	if c, err := a.Counts(); err != nil || c.Puts != 6 || c.Gets != 6 || c.Len != 0 {
		t.Errorf("Counts = %+v, %v; want 6 puts, 6 gets, none waiting", c, err)
	}
}

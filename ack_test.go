package mpq_test

// Acknowledgement mode: Receive and its Delivery (Ack, Nack, NackAfter,
// Extend), leases, dead-lettering, Join, the deliveries table and the ring
// space held deliveries keep, and consumers killed while they hold
// deliveries or the consumer lock.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("ack-holder", runAckHolder)
}

// ackWait bounds every wait of these tests that should end: generous, so
// that a slow machine never fails them; what must not happen is checked
// over shorter spans.
const ackWait = 5 * time.Second

// ackQueue creates a queue with options o (in a new temporary directory if
// o.Dir is empty) and closes it when the test ends.
func ackQueue(t testing.TB, o mpq.Options) *mpq.Queue {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	q, err := mpq.Create("acks", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func mustPut(t testing.TB, q *mpq.Queue, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := q.Put(t.Context(), []byte(m)); err != nil {
			t.Fatalf("Put(%q): %v", m, err)
		}
	}
}

// mustReceive receives a message within ackWait.
func mustReceive(t testing.TB, q *mpq.Queue) *mpq.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ackWait)
	defer cancel()
	d, err := q.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v (%v, %d in flight)", err, q.Stats(), q.Stats().InFlight)
	}
	return d
}

// expectDelivery checks what d holds.
func expectDelivery(t testing.TB, d *mpq.Delivery, data string, count int) {
	t.Helper()
	if string(d.Data()) != data || d.Count() != count {
		t.Fatalf("delivery of %q, count %d; want %q, count %d", d.Data(), d.Count(), data, count)
	}
}

func mustAck(t testing.TB, d *mpq.Delivery) {
	t.Helper()
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack of %q (count %d): %v", d.Data(), d.Count(), err)
	}
}

// ackStats are the Stats fields acknowledgement mode is about; -1 in a
// want value means "don't care".
type ackStats struct {
	Len, InFlight                               int
	Gets, Acks, Redelivered, DeadLettered, Used int
}

func checkStats(t testing.TB, q *mpq.Queue, want ackStats) {
	t.Helper()
	s := q.Stats()
	got := ackStats{s.Len, s.InFlight, int(s.Gets), int(s.Acks), int(s.Redelivered), int(s.DeadLettered), s.Used}
	w := want
	for _, f := range []struct{ g, w *int }{
		{&got.Len, &w.Len}, {&got.InFlight, &w.InFlight}, {&got.Gets, &w.Gets}, {&got.Acks, &w.Acks},
		{&got.Redelivered, &w.Redelivered}, {&got.DeadLettered, &w.DeadLettered}, {&got.Used, &w.Used},
	} {
		if *f.w < 0 {
			*f.w = *f.g
		}
	}
	if got != w {
		t.Errorf("stats %+v; want %+v", got, w)
	}
}

// A result of a call run in another goroutine.
type result[T any] struct {
	v   T
	err error
}

func async[T any](f func() (T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	return ch
}

func asyncErr(f func() error) <-chan result[struct{}] {
	return async(func() (struct{}, error) { return struct{}{}, f() })
}

// stillBlocked fails t if the call behind ch returns within d.
func stillBlocked[T any](t testing.TB, ch <-chan result[T], d time.Duration, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned (%v, %v); want it to wait", what, r.v, r.err)
	case <-time.After(d):
	}
}

// await waits for the call behind ch to return, for at most ackWait.
func await[T any](t testing.TB, ch <-chan result[T], what string) result[T] {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(ackWait):
		t.Fatalf("%s still waiting after %v", what, ackWait)
	}
	panic("unreachable")
}

func TestReceiveAck(t *testing.T) {
	const lease = 10 * time.Second
	q := ackQueue(t, mpq.Options{Lease: lease})
	mustPut(t, q, "a", "b")

	before := time.Now()
	d := mustReceive(t, q)
	after := time.Now()
	expectDelivery(t, d, "a", 1)
	if dl := d.Deadline(); dl.Before(before.Add(lease)) || dl.After(after.Add(lease)) {
		t.Errorf("Deadline %v; want between %v and %v (Receive time + Lease)", dl, before.Add(lease), after.Add(lease))
	}
	// Held: not waiting, but in flight, its bytes still used.
	checkStats(t, q, ackStats{Len: 1, InFlight: 1, Gets: 1, Acks: 0, Redelivered: 0, DeadLettered: 0, Used: -1})
	if q.Stats().Used == 0 {
		t.Errorf("Used = 0 with a delivery held")
	}
	mustAck(t, d)
	checkStats(t, q, ackStats{Len: 1, InFlight: 0, Gets: 1, Acks: 1, Used: -1})

	d = mustReceive(t, q)
	expectDelivery(t, d, "b", 1)
	mustAck(t, d)
	if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Errorf("TryReceive of an empty queue: %v, %v; want %v", d, err, mpq.ErrEmpty)
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 2, Acks: 2, Used: 0})
	// An empty message is an empty, non-nil slice, as with Get.
	mustPut(t, q, "")
	d = mustReceive(t, q)
	if d.Data() == nil || len(d.Data()) != 0 {
		t.Errorf("Data of an empty message: %#v; want []byte{}", d.Data())
	}
	mustAck(t, d)
}

// Data is the caller's copy: changing it changes nothing in the queue, and
// it stays as it was after Ack while the ring's bytes are reused.
func TestDeliveryDataIsCopy(t *testing.T) {
	q := ackQueue(t, mpq.Options{Capacity: 4096, MaxMessage: 100})
	mustPut(t, q, "first message")
	d := mustReceive(t, q)
	data := d.Data()
	data[0] = 'X'
	if err := d.Nack(); err != nil {
		t.Fatal(err)
	}
	d = mustReceive(t, q)
	expectDelivery(t, d, "first message", 2)
	mustAck(t, d)
	filler := strings.Repeat("z", 100)
	for range 100 { // several laps of the ring
		mustPut(t, q, filler)
		if m, err := q.TryGet(); err != nil || string(m) != filler {
			t.Fatalf("TryGet: %q, %v", m, err)
		}
	}
	if string(d.Data()) != "first message" || string(data) != "Xirst message" {
		t.Errorf("after the ring was reused: Data %q, the earlier copy %q; want them unchanged", d.Data(), data)
	}
}

// A Delivery is settled once: every later Ack, Nack, NackAfter or Extend
// returns ErrAcked.
func TestDeliverySettledOnce(t *testing.T) {
	q := ackQueue(t, mpq.Options{})
	ops := []struct {
		name string
		f    func(d *mpq.Delivery) error
	}{
		{"Ack", (*mpq.Delivery).Ack},
		{"Nack", (*mpq.Delivery).Nack},
		{"NackAfter", func(d *mpq.Delivery) error { return d.NackAfter(time.Millisecond) }},
		{"Extend", func(d *mpq.Delivery) error { return d.Extend(time.Minute) }},
	}
	for _, first := range ops[:3] {
		t.Run(first.name, func(t *testing.T) {
			mustPut(t, q, first.name)
			d := mustReceive(t, q)
			if err := first.f(d); err != nil {
				t.Fatalf("%s: %v", first.name, err)
			}
			for _, then := range ops {
				if err := then.f(d); !errors.Is(err, mpq.ErrAcked) {
					t.Errorf("%s after %s: %v; want %v", then.name, first.name, err, mpq.ErrAcked)
				}
			}
			// Whatever was given back is received (and acked) once more.
			for q.Len() > 0 {
				mustAck(t, mustReceive(t, q))
			}
			checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: -1, Acks: -1, Redelivered: -1, Used: 0})
		})
	}
	// Extend does not settle a delivery.
	mustPut(t, q, "extend")
	d := mustReceive(t, q)
	if err := d.Extend(time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.Extend(time.Minute); err != nil {
		t.Errorf("second Extend: %v", err)
	}
	for _, lease := range []time.Duration{0, -time.Second} {
		if err := d.Extend(lease); !errors.Is(err, mpq.ErrInvalidOptions) {
			t.Errorf("Extend(%v): %v; want %v", lease, err, mpq.ErrInvalidOptions)
		}
	}
	mustAck(t, d)
}

// A message given back is delivered again, with its count, before the
// messages put after it; several given back come in the order they were put.
func TestNackRedeliveredFirst(t *testing.T) {
	q := ackQueue(t, mpq.Options{})
	mustPut(t, q, "a", "b")
	d := mustReceive(t, q)
	expectDelivery(t, d, "a", 1)
	if err := d.Nack(); err != nil {
		t.Fatal(err)
	}
	checkStats(t, q, ackStats{Len: 2, InFlight: 1, Gets: 1, Redelivered: 1, Used: -1})
	mustPut(t, q, "c")
	d = mustReceive(t, q)
	expectDelivery(t, d, "a", 2)
	if err := d.Nack(); err != nil {
		t.Fatal(err)
	}
	d = mustReceive(t, q)
	expectDelivery(t, d, "a", 3)
	mustAck(t, d)

	db, dc := mustReceive(t, q), mustReceive(t, q)
	expectDelivery(t, db, "b", 1)
	expectDelivery(t, dc, "c", 1)
	// Given back c then b: b, put first, comes first.
	if err := dc.Nack(); err != nil {
		t.Fatal(err)
	}
	if err := db.Nack(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, q, "d")
	for _, want := range []struct {
		data  string
		count int
	}{{"b", 2}, {"c", 2}, {"d", 1}} {
		d := mustReceive(t, q)
		expectDelivery(t, d, want.data, want.count)
		mustAck(t, d)
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 4, Acks: 4, Redelivered: 4, Used: 0})
}

// NackAfter keeps the message from every consumer until the delay has
// passed; messages put later are delivered meanwhile.
func TestNackAfter(t *testing.T) {
	const delay = 200 * time.Millisecond
	q := ackQueue(t, mpq.Options{})
	mustPut(t, q, "later", "now")
	d := mustReceive(t, q)
	t0 := time.Now()
	if err := d.NackAfter(delay); err != nil {
		t.Fatal(err)
	}
	d = mustReceive(t, q)
	expectDelivery(t, d, "now", 1)
	mustAck(t, d)
	if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive during the delay: %v, %v; want %v", d, err, mpq.ErrEmpty)
	}
	if m, err := q.TryGet(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryGet during the delay: %q, %v; want %v", m, err, mpq.ErrEmpty)
	}
	if n := q.Len(); n != 1 {
		t.Errorf("Len during the delay: %d; want 1 (the message given back)", n)
	}
	d = mustReceive(t, q)
	if waited := time.Since(t0); waited < delay {
		t.Errorf("message given back with NackAfter(%v) delivered after %v", delay, waited)
	} else {
		t.Logf("message given back with NackAfter(%v) delivered after %v", delay, waited)
	}
	expectDelivery(t, d, "later", 2)
	mustAck(t, d)
	// A negative delay is no delay.
	mustPut(t, q, "x")
	d = mustReceive(t, q)
	if err := d.NackAfter(-time.Hour); err != nil {
		t.Fatal(err)
	}
	d, err := q.TryReceive()
	if err != nil {
		t.Fatalf("TryReceive after NackAfter(-1h): %v", err)
	}
	expectDelivery(t, d, "x", 2)
	mustAck(t, d)
}

// Extend keeps a delivery past the end of its first lease, while other
// consumers sweep for expired leases.
func TestExtend(t *testing.T) {
	const lease = 100 * time.Millisecond
	q := ackQueue(t, mpq.Options{Lease: lease})
	mustPut(t, q, "long job")
	d := mustReceive(t, q)
	first := d.Deadline()
	before := time.Now()
	if err := d.Extend(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if dl := d.Deadline(); dl.Before(before.Add(2 * time.Second)) {
		t.Errorf("Deadline after Extend(2s): %v; want at least %v", dl, before.Add(2*time.Second))
	}
	// Another consumer keeps sweeping past the first deadline.
	for time.Now().Before(first.Add(3 * lease)) {
		if d2, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
			t.Fatalf("TryReceive while the delivery is extended: %v, %v; want %v", d2, err, mpq.ErrEmpty)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mustAck(t, d)
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 1, Acks: 1, Redelivered: 0, Used: 0})
}

// When a lease ends the message is given back and delivered to another
// consumer; the first one's Ack, Nack and Extend then fail.
func TestLeaseExpiry(t *testing.T) {
	const lease = 100 * time.Millisecond
	dir := t.TempDir()
	q := ackQueue(t, mpq.Options{Dir: dir, Lease: lease})
	q2, err := mpq.Open("acks", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	mustPut(t, q, "slow job")
	d1 := mustReceive(t, q)
	d2 := mustReceive(t, q2)
	if now := time.Now(); now.Before(d1.Deadline()) {
		t.Errorf("second delivery at %v, before the first lease ended at %v", now, d1.Deadline())
	}
	expectDelivery(t, d2, "slow job", 2)
	for _, op := range []struct {
		name string
		f    func() error
	}{
		{"Ack", d1.Ack}, {"Nack", d1.Nack}, {"Extend", func() error { return d1.Extend(time.Minute) }},
	} {
		if err := op.f(); !errors.Is(err, mpq.ErrLeaseExpired) {
			t.Errorf("%s of an expired delivery: %v; want %v", op.name, err, mpq.ErrLeaseExpired)
		}
	}
	mustAck(t, d2)
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 1, Acks: 1, Redelivered: 1, Used: 0})
}

// Leases are enforced by the sweeps of consumers (in Receive and Get, and
// while they wait). Observed: until one of them has given the message back,
// its holder may still Ack it after the end of the lease, and the Ack
// counts. Len and Stats do not sweep.
func TestAckAfterLeaseBeforeSweep(t *testing.T) {
	const lease = 50 * time.Millisecond
	q := ackQueue(t, mpq.Options{Lease: lease})
	mustPut(t, q, "a")
	d := mustReceive(t, q)
	time.Sleep(3 * lease)
	if n := q.Len(); n != 0 {
		t.Errorf("Len after the lease ended, before a sweep: %d; want 0", n)
	}
	if err := d.Ack(); err != nil {
		t.Errorf("Ack after the lease ended, before any sweep: %v; want nil", err)
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 1, Acks: 1, Redelivered: 0, Used: 0})
	if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Errorf("TryReceive after the late Ack: %v, %v; want %v", d, err, mpq.ErrEmpty)
	}
}

// A consumer that only calls Get finds a message whose lease has ended: Get
// takes messages given back, and consumers find expired leases while they
// Receive or Get.
func TestLeaseExpiryGet(t *testing.T) {
	const lease = 50 * time.Millisecond
	dir := t.TempDir()
	q := ackQueue(t, mpq.Options{Dir: dir, Lease: lease})
	q2, err := mpq.Open("acks", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	mustPut(t, q, "a")
	d := mustReceive(t, q)
	time.Sleep(2 * lease)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	m, err := q2.Get(ctx)
	if err != nil || string(m) != "a" {
		t.Fatalf("Get after the lease of the only message ended: %q, %v; want %q (%v, %d in flight)", m, err, "a", q.Stats(), q.Stats().InFlight)
	}
	if err := d.Ack(); !errors.Is(err, mpq.ErrLeaseExpired) {
		t.Errorf("Ack after Get took the message: %v; want %v", err, mpq.ErrLeaseExpired)
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 1, Acks: 0, Redelivered: 1, Used: 0})
}

// receiveNack receives the next message and gives it back, checking its
// data and count.
func receiveNack(t *testing.T, q *mpq.Queue, data string, count int) {
	t.Helper()
	d := mustReceive(t, q)
	expectDelivery(t, d, data, count)
	if err := d.Nack(); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetter(t *testing.T) {
	const max = 3
	t.Run("queue", func(t *testing.T) {
		dir := t.TempDir()
		q := ackQueue(t, mpq.Options{Dir: dir, MaxDeliveries: max, DeadLetter: "dead"})
		mustPut(t, q, "poison", "fine")
		for i := 1; i <= max; i++ {
			receiveNack(t, q, "poison", i)
		}
		// The next Receive moves poison to the dead-letter queue and
		// delivers the next message.
		d := mustReceive(t, q)
		expectDelivery(t, d, "fine", 1)
		mustAck(t, d)
		if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
			t.Errorf("TryReceive after dead-lettering: %v, %v; want %v", d, err, mpq.ErrEmpty)
		}
		checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 2, Acks: 1, Redelivered: max, DeadLettered: 1, Used: 0})
		dq, err := mpq.Open("dead", &mpq.Options{Dir: dir, NoCreate: true})
		if err != nil {
			t.Fatalf("open the dead-letter queue: %v", err)
		}
		defer dq.Close()
		if m, err := dq.TryGet(); err != nil || string(m) != "poison" {
			t.Errorf("dead-letter queue: %q, %v; want %q", m, err, "poison")
		}
		if n := dq.Len(); n != 0 {
			t.Errorf("dead-letter queue holds %d more messages; want 0", n)
		}
	})
	t.Run("drop", func(t *testing.T) {
		q := ackQueue(t, mpq.Options{MaxDeliveries: 2})
		mustPut(t, q, "poison")
		receiveNack(t, q, "poison", 1)
		receiveNack(t, q, "poison", 2)
		if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
			t.Errorf("TryReceive after the last delivery: %v, %v; want %v", d, err, mpq.ErrEmpty)
		}
		checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 1, Acks: 0, Redelivered: 2, DeadLettered: 1, Used: 0})
	})
	t.Run("lease", func(t *testing.T) {
		// Deliveries that end with their lease count as well.
		q := ackQueue(t, mpq.Options{MaxDeliveries: 1, Lease: 20 * time.Millisecond})
		mustPut(t, q, "slow")
		mustReceive(t, q) // never acked
		deadline := time.Now().Add(ackWait)
		for q.Stats().DeadLettered == 0 && time.Now().Before(deadline) {
			if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
				t.Fatalf("TryReceive: %v, %v; want %v", d, err, mpq.ErrEmpty)
			}
			time.Sleep(5 * time.Millisecond)
		}
		checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 1, Acks: 0, Redelivered: 1, DeadLettered: 1, Used: 0})
	})
	t.Run("full", func(t *testing.T) {
		// The dead-letter queue is full: the message stays and is tried
		// again until there is room, never lost.
		dir := t.TempDir()
		dq, err := mpq.Create("dead", &mpq.Options{Dir: dir, Capacity: 4096, MaxMessage: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer dq.Close()
		// Large messages, then empty ones: not a byte of room is left.
		full := 0
		for _, size := range []int{100, 0} {
			for ; ; full++ {
				if err := dq.TryPut(make([]byte, size)); errors.Is(err, mpq.ErrFull) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
			}
		}
		q := ackQueue(t, mpq.Options{Dir: dir, MaxDeliveries: 1, DeadLetter: "dead"})
		mustPut(t, q, "poison")
		receiveNack(t, q, "poison", 1)
		for range 5 {
			if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
				t.Fatalf("TryReceive with the dead-letter queue full: %v, %v; want %v", d, err, mpq.ErrEmpty)
			}
			time.Sleep(30 * time.Millisecond)
		}
		checkStats(t, q, ackStats{Len: 1, InFlight: 1, Gets: 1, Acks: 0, Redelivered: -1, DeadLettered: 0, Used: -1})
		if _, err := dq.TryGet(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(ackWait)
		for q.Stats().DeadLettered == 0 && time.Now().Before(deadline) {
			if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
				t.Fatalf("TryReceive: %v, %v; want %v", d, err, mpq.ErrEmpty)
			}
			time.Sleep(5 * time.Millisecond)
		}
		checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 1, Acks: 0, Redelivered: -1, DeadLettered: 1, Used: 0})
		var last []byte
		for n := 0; ; n++ {
			m, err := dq.TryGet()
			if errors.Is(err, mpq.ErrEmpty) {
				if n != full {
					t.Errorf("dead-letter queue held %d messages; want %d", n, full)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			last = m
		}
		if string(last) != "poison" {
			t.Errorf("last message of the dead-letter queue: %q; want %q", last, "poison")
		}
	})
}

func TestAckInvalidOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []mpq.Options{
		{DeadLetter: "q"}, // its own name
		{DeadLetter: "a/b"},
		{DeadLetter: ".hidden"},
		{DeadLetter: ".."},
		{DeadLetter: "a\x00b"},
		{DeadLetter: strings.Repeat("d", 300)},
		{MaxDeliveries: -1},
		{Lease: -time.Second},
		{Lease: mpq.MaxLease + 1},
		{Lease: math.MaxInt64},
	} {
		o.Dir = dir
		for _, f := range []func(string, *mpq.Options) (*mpq.Queue, error){mpq.Open, mpq.Create} {
			if q, err := f("q", &o); !errors.Is(err, mpq.ErrInvalidOptions) {
				t.Errorf("open with %+v: %v; want %v", o, err, mpq.ErrInvalidOptions)
				if err == nil {
					q.Close()
					mpq.Remove("q", &mpq.Options{Dir: dir})
				}
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("invalid options left %d entries in the queue directory", len(entries))
	}
}

// Get and Receive share one queue: Get takes messages given back too, and
// the counters follow both.
func TestGetReceiveMixed(t *testing.T) {
	q := ackQueue(t, mpq.Options{})
	mustPut(t, q, "a", "b", "c", "d")
	da := mustReceive(t, q)
	expectDelivery(t, da, "a", 1)
	checkStats(t, q, ackStats{Len: 3, InFlight: 1, Gets: 1, Used: -1})
	if m, err := q.TryGet(); err != nil || string(m) != "b" {
		t.Fatalf("TryGet: %q, %v; want b", m, err)
	}
	checkStats(t, q, ackStats{Len: 2, InFlight: 1, Gets: 2, Used: -1})
	dc := mustReceive(t, q)
	expectDelivery(t, dc, "c", 1)
	if err := da.Nack(); err != nil {
		t.Fatal(err)
	}
	checkStats(t, q, ackStats{Len: 2, InFlight: 2, Gets: 3, Redelivered: 1, Used: -1})
	// Get takes the message given back, before d.
	if m, err := q.TryGet(); err != nil || string(m) != "a" {
		t.Fatalf("TryGet after a Nack: %q, %v; want a", m, err)
	}
	checkStats(t, q, ackStats{Len: 1, InFlight: 1, Gets: 3, Redelivered: 1, Used: -1})
	if err := da.Ack(); !errors.Is(err, mpq.ErrAcked) {
		t.Errorf("Ack after Nack: %v; want %v", err, mpq.ErrAcked)
	}
	if m, err := q.TryGet(); err != nil || string(m) != "d" {
		t.Fatalf("TryGet: %q, %v; want d", m, err)
	}
	// c is held: its bytes and those after it stay used.
	checkStats(t, q, ackStats{Len: 0, InFlight: 1, Gets: 4, Redelivered: 1, Used: -1})
	if q.Stats().Used == 0 {
		t.Errorf("Used = 0 with a delivery held")
	}
	mustAck(t, dc)
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 4, Acks: 1, Redelivered: 1, Used: 0})
	if s := q.Stats(); s.Puts != 4 {
		t.Errorf("Puts %d; want 4", s.Puts)
	}
}

// A sealed queue with a delivery held is not at its end: Receive and Get
// wait until the delivery is acknowledged (then io.EOF) or given back (then
// they deliver it, then io.EOF).
func TestSealWithDeliveries(t *testing.T) {
	testutil.CheckGoroutines(t)
	takers := []struct {
		name string
		take func(ctx context.Context, q *mpq.Queue) (string, error)
		try  func(q *mpq.Queue) (string, error)
	}{
		{"Receive", func(ctx context.Context, q *mpq.Queue) (string, error) {
			d, err := q.Receive(ctx)
			if err != nil {
				return "", err
			}
			return string(d.Data()), d.Ack()
		}, func(q *mpq.Queue) (string, error) {
			d, err := q.TryReceive()
			if err != nil {
				return "", err
			}
			return string(d.Data()), d.Ack()
		}},
		{"Get", func(ctx context.Context, q *mpq.Queue) (string, error) {
			m, err := q.Get(ctx)
			return string(m), err
		}, func(q *mpq.Queue) (string, error) {
			m, err := q.TryGet()
			return string(m), err
		}},
	}
	for _, tk := range takers {
		for _, settle := range []string{"Ack", "Nack"} {
			t.Run(tk.name+"/"+settle, func(t *testing.T) {
				q := ackQueue(t, mpq.Options{})
				mustPut(t, q, "held")
				d := mustReceive(t, q)
				if err := q.Seal(); err != nil {
					t.Fatal(err)
				}
				if m, err := tk.try(q); !errors.Is(err, mpq.ErrEmpty) {
					t.Fatalf("Try%s on a sealed queue with a delivery held: %q, %v; want %v", tk.name, m, err, mpq.ErrEmpty)
				}
				ctx, cancel := context.WithTimeout(t.Context(), ackWait)
				defer cancel()
				ch := async(func() (string, error) { return tk.take(ctx, q) })
				stillBlocked(t, ch, 100*time.Millisecond, tk.name+" on a sealed queue with a delivery held")
				want := result[string]{"", io.EOF}
				if settle == "Ack" {
					mustAck(t, d)
				} else {
					if err := d.Nack(); err != nil {
						t.Fatal(err)
					}
					want = result[string]{"held", nil}
				}
				if r := await(t, ch, tk.name); r != want {
					t.Fatalf("%s after %s: %q, %v; want %q, %v", tk.name, settle, r.v, r.err, want.v, want.err)
				}
				if m, err := tk.try(q); err != io.EOF {
					t.Errorf("Try%s at the end: %q, %v; want io.EOF", tk.name, m, err)
				}
				if m, err := q.Get(ctx); err != io.EOF {
					t.Errorf("Get at the end: %q, %v; want io.EOF", m, err)
				}
				if d, err := q.Receive(ctx); err != io.EOF {
					t.Errorf("Receive at the end: %v, %v; want io.EOF", d, err)
				}
			})
		}
	}
}

func TestJoin(t *testing.T) {
	testutil.CheckGoroutines(t)
	t.Run("empty", func(t *testing.T) {
		q := ackQueue(t, mpq.Options{})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := q.Join(ctx); err != nil {
			t.Fatalf("Join on an empty queue: %v", err)
		}
		// Also once everything was taken.
		mustPut(t, q, "a")
		if _, err := q.TryGet(); err != nil {
			t.Fatal(err)
		}
		if err := q.Join(ctx); err != nil {
			t.Fatalf("Join on a drained queue: %v", err)
		}
	})
	t.Run("Get", func(t *testing.T) {
		q := ackQueue(t, mpq.Options{})
		mustPut(t, q, "a", "b", "c")
		ch := asyncErr(func() error { return q.Join(t.Context()) })
		for _, m := range []string{"a", "b"} {
			if got, err := q.TryGet(); err != nil || string(got) != m {
				t.Fatalf("TryGet: %q, %v", got, err)
			}
		}
		stillBlocked(t, ch, 100*time.Millisecond, "Join with a message left")
		if _, err := q.TryGet(); err != nil {
			t.Fatal(err)
		}
		if r := await(t, ch, "Join"); r.err != nil {
			t.Fatalf("Join: %v", r.err)
		}
	})
	t.Run("Receive", func(t *testing.T) {
		q := ackQueue(t, mpq.Options{})
		mustPut(t, q, "a", "b")
		ch := asyncErr(func() error { return q.Join(t.Context()) })
		da, db := mustReceive(t, q), mustReceive(t, q)
		stillBlocked(t, ch, 100*time.Millisecond, "Join with every message received, none acked")
		mustAck(t, db)
		stillBlocked(t, ch, 100*time.Millisecond, "Join with a message received, not acked")
		if err := da.Nack(); err != nil {
			t.Fatal(err)
		}
		stillBlocked(t, ch, 100*time.Millisecond, "Join with a message given back")
		mustAck(t, mustReceive(t, q))
		if r := await(t, ch, "Join"); r.err != nil {
			t.Fatalf("Join: %v", r.err)
		}
		// Messages put after the call do not count.
		mustPut(t, q, "c")
		ch = asyncErr(func() error { return q.Join(t.Context()) })
		stillBlocked(t, ch, 50*time.Millisecond, "Join with a message waiting")
		d := mustReceive(t, q)
		mustPut(t, q, "d")
		mustAck(t, d)
		if r := await(t, ch, "Join"); r.err != nil {
			t.Fatalf("Join with only a later message left: %v", r.err)
		}
	})
	t.Run("ctx", func(t *testing.T) {
		q := ackQueue(t, mpq.Options{})
		mustPut(t, q, "a")
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := q.Join(ctx); err != context.DeadlineExceeded {
			t.Errorf("Join with a message left and a deadline: %v; want %v", err, context.DeadlineExceeded)
		}
		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		if err := q.Join(ctx); err != context.Canceled {
			t.Errorf("Join with a message left and a cancelled ctx: %v; want %v", err, context.Canceled)
		}
	})
	t.Run("process", func(t *testing.T) {
		dir := t.TempDir()
		q := ackQueue(t, mpq.Options{Dir: dir})
		const n = 50
		p := testutil.Start(t, "producer", namedQueue(dir, "acks"), testutil.Env(fmt.Sprintf("%s=1", envID), fmt.Sprintf("%s=%d", envCount, n)))
		p.Succeed(30 * time.Second)
		ch := asyncErr(func() error { return q.Join(t.Context()) })
		for i := range n {
			stillBlocked(t, ch, time.Millisecond, fmt.Sprintf("Join with %d of %d messages of another process left", n-i, n))
			d := mustReceive(t, q)
			if id, seq, err := parseMsg(d.Data()); err != nil || id != 1 || seq != uint32(i) {
				t.Fatalf("message %d: (%d, %d), %v", i, id, seq, err)
			}
			mustAck(t, d)
		}
		if r := await(t, ch, "Join"); r.err != nil {
			t.Fatalf("Join: %v", r.err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		q, err := mpq.Create("acks", &mpq.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, q, "a")
		q.Close()
		if err := q.Join(t.Context()); !errors.Is(err, mpq.ErrClosed) {
			t.Errorf("Join on a closed queue: %v; want %v", err, mpq.ErrClosed)
		}
	})
	t.Run("close while waiting", func(t *testing.T) {
		// A Join waiting when its handle is closed returns ErrClosed, and
		// Close does not wait for it, as with Get and Put.
		dir := t.TempDir()
		q, err := mpq.Create("acks", &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, q, "a")
		ch := asyncErr(func() error { return q.Join(context.Background()) })
		stillBlocked(t, ch, 50*time.Millisecond, "Join with a message left")
		closed := asyncErr(q.Close)
		select {
		case r := <-closed:
			if r.err != nil {
				t.Errorf("Close: %v", r.err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("Close still waiting after 2s for a Join of the handle")
			// Unblock both through another handle, so the test can end.
			q2, err := mpq.Open("acks", &mpq.Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer q2.Close()
			if _, err := q2.TryGet(); err != nil {
				t.Fatal(err)
			}
			await(t, closed, "Close")
		}
		if r := await(t, ch, "Join"); !errors.Is(r.err, mpq.ErrClosed) {
			t.Errorf("Join when its handle was closed: %v; want %v", r.err, mpq.ErrClosed)
		}
	})
}

// At most MaxInFlight deliveries are held at once: then TryReceive finds
// nothing and Receive waits for one to end. Get needs no entry and goes on.
func TestMaxInFlight(t *testing.T) {
	testutil.CheckGoroutines(t)
	q := ackQueue(t, mpq.Options{})
	for i := range mpq.MaxInFlight + 2 {
		mustPut(t, q, fmt.Sprint(i))
	}
	held := make([]*mpq.Delivery, 0, mpq.MaxInFlight)
	for i := range mpq.MaxInFlight {
		d, err := q.TryReceive()
		if err != nil {
			t.Fatalf("TryReceive %d: %v", i, err)
		}
		expectDelivery(t, d, fmt.Sprint(i), 1)
		held = append(held, d)
	}
	if d, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive with %d deliveries held: %v, %v; want %v", mpq.MaxInFlight, d, err, mpq.ErrEmpty)
	}
	checkStats(t, q, ackStats{Len: 2, InFlight: mpq.MaxInFlight, Gets: mpq.MaxInFlight, Used: -1})
	// A message given back takes no new entry: it is delivered at once.
	if err := held[1].Nack(); err != nil {
		t.Fatal(err)
	}
	d, err := q.TryReceive()
	if err != nil {
		t.Fatalf("TryReceive of a message given back with the table full: %v", err)
	}
	expectDelivery(t, d, "1", 2)
	held[1] = d

	ch := async(func() (*mpq.Delivery, error) { return q.Receive(t.Context()) })
	stillBlocked(t, ch, 100*time.Millisecond, "Receive with the deliveries table full")
	mustAck(t, held[0])
	r := await(t, ch, "Receive after an Ack")
	if r.err != nil {
		t.Fatal(r.err)
	}
	expectDelivery(t, r.v, fmt.Sprint(mpq.MaxInFlight), 1)
	held[0] = r.v
	// Full again; Get still works.
	if m, err := q.TryGet(); err != nil || string(m) != fmt.Sprint(mpq.MaxInFlight+1) {
		t.Fatalf("TryGet with the deliveries table full: %q, %v", m, err)
	}
	for _, d := range held {
		mustAck(t, d)
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: mpq.MaxInFlight + 2, Acks: mpq.MaxInFlight + 1, Redelivered: 1, Used: 0})
}

// Held deliveries keep their ring space, and so do the messages after the
// first held one (space is reclaimed in order): a blocked Put goes on only
// once the first is acknowledged.
func TestHeldDeliveriesKeepSpace(t *testing.T) {
	testutil.CheckGoroutines(t)
	q := ackQueue(t, mpq.Options{Capacity: 4096, MaxMessage: 200})
	msg := func(i int) string { return fmt.Sprintf("%-200d", i) }
	n := 0
	for ; ; n++ {
		if err := q.TryPut([]byte(msg(n))); errors.Is(err, mpq.ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	var held []*mpq.Delivery
	for i := range n {
		d := mustReceive(t, q)
		expectDelivery(t, d, msg(i), 1)
		held = append(held, d)
	}
	if err := q.TryPut([]byte(msg(n))); !errors.Is(err, mpq.ErrFull) {
		t.Fatalf("TryPut with every message held: %v; want %v", err, mpq.ErrFull)
	}
	ch := asyncErr(func() error { return q.Put(t.Context(), []byte(msg(n))) })
	// The last and a middle one do not free the space of the first.
	mustAck(t, held[n-1])
	mustAck(t, held[n/2])
	stillBlocked(t, ch, 100*time.Millisecond, "Put with the first delivery still held")
	if err := held[0].Nack(); err != nil { // given back: still holds its space
		t.Fatal(err)
	}
	stillBlocked(t, ch, 100*time.Millisecond, "Put with the first message given back")
	d := mustReceive(t, q)
	expectDelivery(t, d, msg(0), 2)
	mustAck(t, d)
	if r := await(t, ch, "Put after the first Ack"); r.err != nil {
		t.Fatalf("Put: %v", r.err)
	}
	for _, d := range held[1 : n-1] {
		if d != held[n/2] {
			mustAck(t, d)
		}
	}
	d = mustReceive(t, q)
	expectDelivery(t, d, msg(n), 1)
	mustAck(t, d)
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: n + 1, Acks: n + 1, Redelivered: 1, Used: 0})
}

func TestDurableAck(t *testing.T) {
	dir := t.TempDir()
	o := &mpq.Options{Dir: dir, Durable: true}
	q, err := mpq.Create("durable", o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { q.Close() }()
	mustPut(t, q, "a", "b")
	receiveNack(t, q, "a", 1)
	d := mustReceive(t, q)
	expectDelivery(t, d, "a", 2)
	mustAck(t, d)
	d = mustReceive(t, q)
	expectDelivery(t, d, "b", 1)
	// Held when the last handle closes: delivered again after reopening.
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if q, err = mpq.Open("durable", o); err != nil {
		t.Fatal(err)
	}
	d = mustReceive(t, q)
	expectDelivery(t, d, "b", 2)
	mustAck(t, d)
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 2, Acks: 2, Redelivered: -1, Used: 0})
	if err := q.Join(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Helper processes that receive and die.
const (
	envAckReceive = "MPQ_TEST_ACK_RECEIVE" // messages to receive
	envAckAck     = "MPQ_TEST_ACK_ACK"     // 1: then ack them, in order
	envAckHook    = "MPQ_TEST_ACK_HOOK"    // ring hook point to stop at (with MPQ_TEST_HOOK_AFTER)
)

// runAckHolder receives MPQ_TEST_ACK_RECEIVE messages, saying "r ID SEQ
// COUNT" after each, then, with MPQ_TEST_ACK_ACK=1, acks them in order,
// saying "a ID SEQ" after each, then says "held" and waits to be killed.
// With MPQ_TEST_ACK_HOOK set it stops for good at that hook point, after
// MPQ_TEST_HOOK_AFTER calls, saying "stuck".
func runAckHolder() error {
	if p := os.Getenv(envAckHook); p != "" {
		stopAt(p, testutil.EnvInt(envHookAfter, -1))
	}
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	var held []*mpq.Delivery
	for range testutil.EnvInt(envAckReceive, 0) {
		d, err := q.Receive(context.Background())
		if err != nil {
			return err
		}
		id, seq, err := parseMsg(d.Data())
		if err != nil {
			return err
		}
		testutil.Say("r %d %d %d", id, seq, d.Count())
		held = append(held, d)
	}
	if testutil.EnvInt(envAckAck, 0) == 1 {
		for _, d := range held {
			if err := d.Ack(); err != nil {
				return err
			}
			id, seq, _ := parseMsg(d.Data())
			testutil.Say("a %d %d", id, seq)
		}
	}
	testutil.Say("held")
	testutil.BlockForever()
	return nil
}

// ackLines parses the "r ID SEQ COUNT" and "a ID SEQ" lines of an ack-holder.
func ackLines(t testing.TB, c *testutil.Child) (received, acked []uint32) {
	t.Helper()
	for _, l := range c.Lines() {
		var id, seq, count uint32
		if _, err := fmt.Sscanf(l, "r %d %d %d", &id, &seq, &count); err == nil {
			if id != 0 || count != 1 {
				t.Fatalf("%v: %q; want first deliveries of producer 0", c, l)
			}
			received = append(received, seq)
		} else if _, err := fmt.Sscanf(l, "a %d %d", &id, &seq); err == nil {
			acked = append(acked, seq)
		}
	}
	return received, acked
}

// receiveAll receives until every message of want has been received (and
// TryReceive then finds nothing), within ackWait, checking the count each
// has (want[seq]) and that first deliveries and redeliveries each come in
// the order the messages were put. A message of maybe may come once, with
// the count it gives, or not at all. It returns the deliveries, unacked.
func receiveAll(t testing.TB, q *mpq.Queue, want, maybe map[uint32]int) []*mpq.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ackWait)
	defer cancel()
	var ds []*mpq.Delivery
	seen := map[uint32]bool{}
	last := map[bool]int64{true: -1, false: -1} // by "is a redelivery"
	missing := len(want)
	for {
		var (
			d   *mpq.Delivery
			err error
		)
		if missing > 0 {
			d, err = q.Receive(ctx)
		} else if d, err = q.TryReceive(); errors.Is(err, mpq.ErrEmpty) {
			return ds
		}
		if err != nil {
			t.Fatalf("Receive with %d messages still to come: %v (%v, %d in flight)", missing, err, q.Stats(), q.Stats().InFlight)
		}
		ds = append(ds, d)
		id, seq, err := parseMsg(d.Data())
		if err != nil || id != 0 {
			t.Fatalf("received (%d, %d), %v", id, seq, err)
		}
		count, ok := want[seq]
		if !ok {
			count, ok = maybe[seq]
		}
		switch {
		case !ok:
			t.Fatalf("received message %d (count %d), which was acked or is not expected", seq, d.Count())
		case seen[seq]:
			t.Fatalf("received message %d twice", seq)
		case d.Count() != count:
			t.Errorf("message %d delivered with count %d; want %d", seq, d.Count(), count)
		}
		seen[seq] = true
		if _, ok := want[seq]; ok {
			missing--
		} else {
			t.Logf("message %d, whose Ack the killed consumer was in, received again (count %d)", seq, d.Count())
		}
		if re := d.Count() > 1; int64(seq) < last[re] {
			t.Errorf("message %d (count %d) received after message %d", seq, d.Count(), last[re])
		} else {
			last[re] = int64(seq)
		}
	}
}

// A consumer process killed while it holds deliveries: they are delivered
// again, each once, with count 2.
func TestReceiverKilled(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	q := ackQueue(t, mpq.Options{Dir: dir})
	const k = 10
	putMsgs(t, q, 0, 0, k)
	c := testutil.Start(t, "ack-holder", namedQueue(dir, "acks"), testutil.Env(fmt.Sprintf("%s=%d", envAckReceive, k)))
	c.Expect("held", 30*time.Second)
	if got, _ := ackLines(t, c); !slices.Equal(got, []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("consumer received %v", got)
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: k, Gets: k, Used: -1})
	putMsgs(t, q, 0, k, k+1)
	c.Kill()
	if err := c.Wait(10 * time.Second); err == nil {
		t.Errorf("%v exited cleanly after SIGKILL", c)
	}
	want := map[uint32]int{k: 1}
	for i := range k {
		want[uint32(i)] = 2
	}
	ds := receiveAll(t, q, want, nil)
	checkStats(t, q, ackStats{Len: 0, InFlight: k + 1, Gets: k + 1, Acks: 0, Redelivered: -1, Used: -1})
	if s := q.Stats(); s.Redelivered < k {
		t.Errorf("Redelivered %d; want at least %d", s.Redelivered, k)
	}
	for _, d := range ds {
		mustAck(t, d)
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: k + 1, Acks: k + 1, Redelivered: -1, Used: 0})
	ctx, cancel := context.WithTimeout(t.Context(), ackWait)
	defer cancel()
	if err := q.Join(ctx); err != nil {
		t.Fatalf("Join: %v", err)
	}
}

// A consumer process killed while it holds deliveries: a process that only
// calls Get finds them.
func TestReceiverKilledGet(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	q := ackQueue(t, mpq.Options{Dir: dir})
	const k = 3
	putMsgs(t, q, 0, 0, k)
	c := testutil.Start(t, "ack-holder", namedQueue(dir, "acks"), testutil.Env(fmt.Sprintf("%s=%d", envAckReceive, k)))
	c.Expect("held", 30*time.Second)
	c.Kill()
	c.Wait(10 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	for i := range k {
		m, err := q.Get(ctx)
		if err != nil {
			t.Fatalf("Get %d of the %d messages a killed consumer held: %v (%v, %d in flight)", i, k, err, q.Stats(), q.Stats().InFlight)
		}
		if _, seq, err := parseMsg(m); err != nil || seq != uint32(i) {
			t.Fatalf("Get %d: seq %d, %v", i, seq, err)
		}
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: k, Acks: 0, Redelivered: k, Used: 0})
}

// Extend and NackAfter refuse a duration over MaxLease (whose deadline
// would overflow, or is absurd) and change nothing: the holder keeps the
// message, no other consumer gets it, and the holder's Ack still works.
func TestExtendNackAfterTooLong(t *testing.T) {
	const lease = 300 * time.Millisecond
	q := ackQueue(t, mpq.Options{Lease: lease})
	for _, tc := range []struct {
		name string
		op   func(*mpq.Delivery) error
		want error // nil: accepted
	}{
		{"Extend(math.MaxInt64)", func(d *mpq.Delivery) error { return d.Extend(math.MaxInt64) }, mpq.ErrInvalidOptions},
		{"Extend(MaxLease+1)", func(d *mpq.Delivery) error { return d.Extend(mpq.MaxLease + 1) }, mpq.ErrInvalidOptions},
		{"Extend(-1)", func(d *mpq.Delivery) error { return d.Extend(-1) }, mpq.ErrInvalidOptions},
		{"Extend(0)", func(d *mpq.Delivery) error { return d.Extend(0) }, mpq.ErrInvalidOptions},
		{"NackAfter(math.MaxInt64)", func(d *mpq.Delivery) error { return d.NackAfter(math.MaxInt64) }, mpq.ErrInvalidOptions},
		{"NackAfter(MaxLease+1)", func(d *mpq.Delivery) error { return d.NackAfter(mpq.MaxLease + 1) }, mpq.ErrInvalidOptions},
		{"Extend(MaxLease)", func(d *mpq.Delivery) error { return d.Extend(mpq.MaxLease) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustPut(t, q, tc.name)
			d := mustReceive(t, q)
			before := d.Deadline()
			start := time.Now()
			err := tc.op(d)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
			switch {
			case tc.want != nil && !d.Deadline().Equal(before):
				t.Errorf("Deadline after a refused call: got %v; want %v", d.Deadline(), before)
			case tc.want == nil && d.Deadline().Before(start.Add(mpq.MaxLease)):
				t.Errorf("Deadline: got %v; want at least %v", d.Deadline(), start.Add(mpq.MaxLease))
			}
			if d.Deadline().Year() < start.Year() {
				t.Errorf("Deadline wrapped: got %v", d.Deadline())
			}
			if d2, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
				t.Errorf("TryReceive while the delivery is held: got %v, %v; want %v", d2, err, mpq.ErrEmpty)
			}
			if err := d.Ack(); err != nil {
				t.Errorf("Ack after %s: got %v; want nil", tc.name, err)
			}
		})
	}
	checkStats(t, q, ackStats{Len: 0, InFlight: 0, Gets: 7, Acks: 7, Redelivered: 0, Used: 0})
}

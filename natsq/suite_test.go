package natsq_test

// The behaviour suite of mpq.MessageQueue: one table of subtests, run against
// both backends through mpq.OpenURL only, shared memory (shm: URLs in a
// temporary directory) and NATS JetStream (nats:// URLs to a nats-server
// embedded in the test process). Where the backends legitimately differ, the
// backend descriptor says so in a field of its own, documented in
// natsq/doc.go; every other expectation is the same for both.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	_ "github.com/mpq-go/mpq/natsq"
)

// waitLong bounds every wait for something that must happen: generous, as
// the machine is small and shared, and never a measure of speed.
const waitLong = 30 * time.Second

// blockedFor is how long a call must stay blocked to count as blocked. A
// slow machine can only make such a check miss a bug, never fail wrongly.
const blockedFor = 300 * time.Millisecond

// shortLease is the lease of the subtests that wait for one to end.
const shortLease = 2 * time.Second

// params describe a queue a subtest wants.
type params struct {
	// bound, a power of two from 2 to 256, makes the queue hold at most
	// bound messages of boundSize(bound) bytes, which is the size every
	// message of such a queue has.
	bound         int
	lease         time.Duration // 0: the default, 30s
	maxDeliveries int
	deadLetter    string
	maxMessage    int // bytes; 0: the default
}

// boundSize is the size of the messages of a queue of params.bound n: on
// shared memory, n records of it (8-byte header included) fill the smallest
// ring, 4 KiB, exactly, so that no padding record ever takes room.
func boundSize(n int) int { return 4096/n - 8 }

// A backend is one implementation of mpq.MessageQueue as the suite sees it.
type backend struct {
	name string
	// url is the URL of the queue called name, with p.
	url func(name string, p params) string

	// Documented differences (natsq/doc.go, "Differences from shared
	// memory"); each is true of NATS and false of shared memory.

	// doneCtxFails: Put and Get with a context already done return
	// ctx.Err() even when they need not wait. On shared memory they
	// succeed if there is room or a message (they look at ctx only to wait).
	doneCtxFails bool
	// lateAckExpires: Ack after the lease ended returns ErrLeaseExpired
	// even if the message was not given back yet. On shared memory, Ack
	// succeeds until some Receive or waiter gives the message back.
	lateAckExpires bool
	// lenSkipsGivenBack: Len does not count messages given back (Nack)
	// and waiting for another delivery.
	lenSkipsGivenBack bool
	// prefetches: a handle fetches messages ahead (Options.Prefetch), and
	// other handles do not get them until it hands them out or closes.
	prefetches bool
	// killedLease is the lease with which a consumer process that is
	// killed gets its messages delivered again: shared memory notices the
	// death of the process, NATS waits for AckWait.
	killedLease time.Duration
}

// query is p as URL parameters, with the backend's own for p.bound (set by
// bound) and p.lease (named lease); the others are named alike on both.
func (p params) query(lease string, bound func(url.Values)) url.Values {
	v := url.Values{}
	if p.bound > 0 {
		bound(v)
	}
	if p.maxMessage > 0 {
		v.Set("max-message", strconv.Itoa(p.maxMessage))
	}
	if p.lease > 0 {
		v.Set(lease, p.lease.String())
	}
	if p.maxDeliveries > 0 {
		v.Set("max-deliveries", strconv.Itoa(p.maxDeliveries))
	}
	if p.deadLetter != "" {
		v.Set("dead-letter", p.deadLetter)
	}
	return v
}

// shmBackend is a queue on shared memory, its files in dir.
func shmBackend(dir string) backend {
	return backend{
		name: "shm",
		url: func(name string, p params) string {
			v := p.query("lease", func(v url.Values) {
				v.Set("capacity", "4096")
				v.Set("max-message", strconv.Itoa(boundSize(p.bound)))
			})
			v.Set("dir", dir)
			return "shm:" + name + "?" + v.Encode()
		},
		// A lease far beyond the wait: only the death of the process
		// can give the messages back in time.
		killedLease: 10 * time.Minute,
	}
}

// natsBackend is a queue on the NATS server at addr, whose handles fetch
// prefetch messages at a time (0: the default, 64).
func natsBackend(addr string, prefetch int) backend {
	return backend{
		name: "nats",
		url: func(name string, p params) string {
			v := p.query("ack-wait", func(v url.Values) { v.Set("max-msgs", strconv.Itoa(p.bound)) })
			if prefetch > 0 {
				v.Set("prefetch", strconv.Itoa(prefetch))
			}
			u := "nats://" + addr + "/" + name
			if len(v) > 0 {
				u += "?" + v.Encode()
			}
			return u
		},
		doneCtxFails:      true,
		prefetches:        true,
		lateAckExpires:    true,
		lenSkipsGivenBack: true,
		killedLease:       shortLease,
	}
}

func TestBehaviour(t *testing.T) {
	t.Run("shm", func(t *testing.T) {
		runSuite(t, shmBackend(t.TempDir()))
	})
	t.Run("nats", func(t *testing.T) {
		s := startServer(t, t.TempDir(), 0)
		runSuite(t, natsBackend(s.Addr().String(), 0))
	})
	// Fetching one message at a time, a handle keeps none waiting: the
	// differences that come of prefetching go (natsq/doc.go).
	t.Run("nats-prefetch1", func(t *testing.T) {
		s := startServer(t, t.TempDir(), 0)
		b := natsBackend(s.Addr().String(), 1)
		b.prefetches = false
		runSuite(t, b)
	})
}

// behaviours is the suite: each runs on a backend, on queues of its own.
var behaviours = []struct {
	name string
	fn   func(t *testing.T, b backend)
}{
	{"FIFO", testFIFO},
	{"Contents", testContents},
	{"TryGetEmpty", testTryGetEmpty},
	{"TryGetAfterPut", testTryGetAfterPut},
	{"Prefetch", testPrefetch},
	{"TryPutFull", testTryPutFull},
	{"PutBlocksWhileFull", testPutBlocksWhileFull},
	{"PutContext", testPutContext},
	{"DoneContext", testDoneContext},
	{"GetDeadline", testGetDeadline},
	{"Seal", testSeal},
	{"SealWakesWaiters", testSealWakesWaiters},
	{"SealWithDeliveryOut", testSealWithDeliveryOut},
	{"ReceiveAck", testReceiveAck},
	{"Nack", testNack},
	{"NackOrder", testNackOrder},
	{"NackAfter", testNackAfter},
	{"LeaseExpiry", testLeaseExpiry},
	{"AckAfterLease", testAckAfterLease},
	{"Extend", testExtend},
	{"Len", testLen},
	{"Close", testClose},
	{"CloseWakesWaiters", testCloseWakesWaiters},
	{"ManyProducersConsumers", testManyProducersConsumers},
	{"MaxDeliveriesDeadLetter", testMaxDeliveriesDeadLetter},
	{"MaxDeliveriesLease", testMaxDeliveriesLease},
	{"MaxDeliveriesDrop", testMaxDeliveriesDrop},
	{"TooLarge", testTooLarge},
	{"MaxDeliveriesFullDeadLetter", testMaxDeliveriesFullDeadLetter},
	{"DeliveryAfterClose", testDeliveryAfterClose},
	{"CancelledGetKeeps", testCancelledGetKeeps},
	{"KilledConsumer", testKilledConsumer},
}

func runSuite(t *testing.T, b backend) {
	for _, bt := range behaviours {
		t.Run(bt.name, func(t *testing.T) {
			t.Parallel()
			bt.fn(t, b)
		})
	}
}

var queueSeq atomic.Int64

// newName returns a queue name no other subtest uses.
func newName(t *testing.T) string {
	return fmt.Sprintf("q%d", queueSeq.Add(1))
}

// openQ opens rawURL and closes the handle when the test ends.
func openQ(t *testing.T, rawURL string) mpq.MessageQueue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	q, err := mpq.OpenURL(ctx, rawURL)
	if err != nil {
		t.Fatalf("OpenURL(%s): %v", rawURL, err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// msg is message i, padded with dots to size bytes.
func msg(i, size int) []byte {
	b := fmt.Appendf(nil, "m%05d", i)
	for len(b) < size {
		b = append(b, '.')
	}
	return b
}

func put(t *testing.T, q mpq.MessageQueue, m []byte) {
	t.Helper()
	if err := q.Put(timeout(t, waitLong), m); err != nil {
		t.Fatalf("Put(%.10q): %v", m, err)
	}
}

// get takes the next message and checks it is want.
func get(t *testing.T, q mpq.MessageQueue, want []byte) {
	t.Helper()
	got, err := q.Get(timeout(t, waitLong))
	if err != nil {
		t.Fatalf("Get, want %.10q: %v", want, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get = %.10q, want %.10q", got, want)
	}
}

func receive(t *testing.T, q mpq.MessageQueue) *mpq.Delivery {
	t.Helper()
	d, err := q.Receive(timeout(t, waitLong))
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return d
}

// checkDelivery checks that d is of want, delivered count times.
func checkDelivery(t *testing.T, d *mpq.Delivery, want []byte, count int) {
	t.Helper()
	if !bytes.Equal(d.Data(), want) || d.Count() != count {
		t.Fatalf("delivery of %.10q, count %d; want %.10q, count %d", d.Data(), d.Count(), want, count)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// wantEmpty checks that TryGet on q finds no message (mpq.ErrEmpty); what
// says when.
func wantEmpty(t *testing.T, q mpq.MessageQueue, what string) {
	t.Helper()
	if m, err := q.TryGet(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryGet %s: %.10q, %v; want ErrEmpty", what, m, err)
	}
}

// wantEOF checks that Get, TryGet, Receive and TryReceive all say the queue
// is sealed and done, with io.EOF itself, as callers compare it.
func wantEOF(t *testing.T, q mpq.MessageQueue) {
	t.Helper()
	if m, err := q.Get(timeout(t, waitLong)); err != io.EOF {
		t.Fatalf("Get on a sealed, drained queue: %.10q, %v; want io.EOF", m, err)
	}
	if m, err := q.TryGet(); err != io.EOF {
		t.Fatalf("TryGet on a sealed, drained queue: %.10q, %v; want io.EOF", m, err)
	}
	if _, err := q.Receive(timeout(t, waitLong)); err != io.EOF {
		t.Fatalf("Receive on a sealed, drained queue: %v; want io.EOF", err)
	}
	if _, err := q.TryReceive(); err != io.EOF {
		t.Fatalf("TryReceive on a sealed, drained queue: %v; want io.EOF", err)
	}
}

// sealEmpty seals q and checks that nothing is left in it and no delivery
// is out: what was acknowledged (or taken by Get) is gone for good.
func sealEmpty(t *testing.T, q mpq.MessageQueue) {
	t.Helper()
	if err := q.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	wantEOF(t, q)
}

type result struct {
	data []byte
	d    *mpq.Delivery
	err  error
}

// async runs f in a goroutine; the test must take its result (await) or
// make it return.
func async(f func() result) <-chan result {
	c := make(chan result, 1)
	go func() { c <- f() }()
	return c
}

// stillBlocked checks that the call behind c has not returned after
// blockedFor.
func stillBlocked(t *testing.T, c <-chan result, what string) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("%s returned while it should block: %.10q, %v", what, r.data, r.err)
	case <-time.After(blockedFor):
	}
}

// await returns the result of the call behind c, failing the test if it
// does not come within waitLong.
func await(t *testing.T, c <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(waitLong):
		t.Fatalf("%s still blocked after %v", what, waitLong)
		return result{}
	}
}

// fill puts the bound messages of a bounded queue, 0 to bound-1.
func fill(t *testing.T, q mpq.MessageQueue, bound int) {
	t.Helper()
	for i := range bound {
		if err := q.TryPut(msg(i, boundSize(bound))); err != nil {
			t.Fatalf("TryPut %d of %d: %v", i, bound, err)
		}
	}
	if err := q.TryPut(msg(bound, boundSize(bound))); !errors.Is(err, mpq.ErrFull) {
		t.Fatalf("TryPut on a queue of %d full: %v, want ErrFull", bound, err)
	}
}

// One producer's messages come out in the order they went in, through
// another handle.
func testFIFO(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	p, c := openQ(t, u), openQ(t, u)
	const n = 200
	for i := range n {
		put(t, p, msg(i, 8))
	}
	for i := range n / 2 {
		get(t, c, msg(i, 8))
	}
	for i := n / 2; i < n; i++ {
		d := receive(t, c)
		checkDelivery(t, d, msg(i, 8), 1)
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	wantEmpty(t, c, "after all")
}

// Messages come back byte for byte: empty (as an empty, non-nil slice), every
// byte value, and large.
func testContents(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{}))
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	msgs := [][]byte{{}, {0}, all, large, {}}
	for _, m := range msgs {
		put(t, q, m)
	}
	for i, want := range msgs {
		var got []byte
		var err error
		if i%2 == 0 {
			got, err = q.Get(timeout(t, waitLong))
		} else {
			var d *mpq.Delivery
			d, err = q.Receive(timeout(t, waitLong))
			if err == nil {
				got = d.Data()
				err = d.Ack()
			}
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got == nil || !bytes.Equal(got, want) {
			t.Fatalf("message %d: got %d bytes (nil %v), want %d", i, len(got), got == nil, len(want))
		}
	}
}

func testTryGetEmpty(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{}))
	wantEmpty(t, q, "on a new queue")
	if _, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive on a new queue: %v; want ErrEmpty", err)
	}
	put(t, q, []byte("x"))
	get(t, q, []byte("x"))
	wantEmpty(t, q, "on an emptied queue")
}

// A message whose Put returned is there for TryGet and TryReceive at once,
// on this handle and others.
func testTryGetAfterPut(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	q, other := openQ(t, u), openQ(t, u)
	for i := range 100 {
		put(t, q, msg(i, 8))
		h := q
		if i%2 == 1 {
			h = other
		}
		if i%4 < 2 {
			if m, err := h.TryGet(); err != nil || !bytes.Equal(m, msg(i, 8)) {
				t.Fatalf("TryGet right after Put %d: %.10q, %v", i, m, err)
			}
			continue
		}
		d, err := h.TryReceive()
		if err != nil {
			t.Fatalf("TryReceive right after Put %d: %v", i, err)
		}
		checkDelivery(t, d, msg(i, 8), 1)
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

// A consumer on another handle gets the next message at once, unless the
// first handle fetched it (prefetches).
func testPrefetch(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	q, other := openQ(t, u), openQ(t, u)
	for _, m := range []string{"a", "b", "c"} {
		put(t, q, []byte(m))
	}
	get(t, q, []byte("a"))
	m, err := other.TryGet()
	if b.prefetches {
		if !errors.Is(err, mpq.ErrEmpty) {
			t.Fatalf("TryGet on another handle, the first having fetched all: %.10q, %v; want ErrEmpty", m, err)
		}
		get(t, q, []byte("b"))
	} else if err != nil || string(m) != "b" {
		t.Fatalf("TryGet on another handle: %.10q, %v; want \"b\"", m, err)
	}
	get(t, q, []byte("c"))
	for _, h := range []mpq.MessageQueue{q, other} {
		wantEmpty(t, h, "after all")
	}
}

func testTryPutFull(t *testing.T, b backend) {
	const bound = 4
	q := openQ(t, b.url(newName(t), params{bound: bound}))
	size := boundSize(bound)
	fill(t, q, bound)
	if err := q.TryPut(msg(99, size)); !errors.Is(err, mpq.ErrFull) {
		t.Fatalf("TryPut on full, again: %v, want ErrFull", err)
	}
	get(t, q, msg(0, size))
	// Get made room for one more, at once (NATS: Get's acknowledgement may
	// reach the server a little after Get returns, hence Put).
	put(t, q, msg(bound, size))
	if err := q.TryPut(msg(99, size)); !errors.Is(err, mpq.ErrFull) {
		t.Fatalf("TryPut on full after one Get and one Put: %v, want ErrFull", err)
	}
	for i := 1; i <= bound; i++ {
		get(t, q, msg(i, size))
	}
}

func testPutBlocksWhileFull(t *testing.T, b backend) {
	const bound = 4
	u := b.url(newName(t), params{bound: bound})
	p, c := openQ(t, u), openQ(t, u)
	size := boundSize(bound)
	fill(t, p, bound)
	done := async(func() result { return result{err: p.Put(timeout(t, waitLong), msg(bound, size))} })
	stillBlocked(t, done, "Put on a full queue")
	get(t, c, msg(0, size))
	if r := await(t, done, "Put after a Get"); r.err != nil {
		t.Fatalf("Put after a Get: %v", r.err)
	}
	for i := 1; i <= bound; i++ {
		get(t, c, msg(i, size))
	}
	wantEmpty(t, c, "after all")
}

// Put on a full queue returns ctx.Err() once ctx is done, and puts nothing.
func testPutContext(t *testing.T, b backend) {
	const bound = 4
	q := openQ(t, b.url(newName(t), params{bound: bound}))
	size := boundSize(bound)
	fill(t, q, bound)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantErr(t, "Put on full with a cancelled ctx", q.Put(ctx, msg(98, size)), context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), blockedFor)
	defer cancel()
	wantErr(t, "Put on full until a deadline", q.Put(ctx, msg(99, size)), context.DeadlineExceeded)

	// Cancelled while blocked.
	ctx, cancel = context.WithCancel(context.Background())
	done := async(func() result { return result{err: q.Put(ctx, msg(97, size))} })
	stillBlocked(t, done, "Put on a full queue")
	cancel()
	wantErr(t, "Put on full, cancelled while blocked", await(t, done, "cancelled Put").err, context.Canceled)

	for i := range bound {
		get(t, q, msg(i, size))
	}
	wantEmpty(t, q, "after a Put that failed")
}

// Put and Get with a context already done, when they need not wait: the
// backends differ (doneCtxFails).
func testDoneContext(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := q.Put(ctx, []byte("a"))
	if b.doneCtxFails {
		wantErr(t, "Put with room and a cancelled ctx", err, context.Canceled)
		put(t, q, []byte("a"))
	} else if err != nil {
		t.Fatalf("Put with room and a cancelled ctx: %v, want nil", err)
	}
	if n := q.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	m, err := q.Get(ctx)
	if b.doneCtxFails {
		wantErr(t, "Get of a waiting message with a cancelled ctx", err, context.Canceled)
		get(t, q, []byte("a"))
	} else if err != nil || string(m) != "a" {
		t.Fatalf("Get with a message waiting and a cancelled ctx: %.10q, %v; want \"a\"", m, err)
	}
	wantEmpty(t, q, "after all")
}

func testGetDeadline(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{}))
	ctx, cancel := context.WithTimeout(context.Background(), blockedFor)
	defer cancel()
	m, err := q.Get(ctx)
	wantErr(t, fmt.Sprintf("Get on empty until a deadline (%.10q)", m), err, context.DeadlineExceeded)
	ctx, cancel = context.WithTimeout(context.Background(), blockedFor)
	defer cancel()
	_, err = q.Receive(ctx)
	wantErr(t, "Receive on empty until a deadline", err, context.DeadlineExceeded)

	ctx, cancel = context.WithCancel(context.Background())
	done := async(func() result { m, err := q.Get(ctx); return result{data: m, err: err} })
	stillBlocked(t, done, "Get on an empty queue")
	cancel()
	wantErr(t, "Get on empty, cancelled while blocked", await(t, done, "cancelled Get").err, context.Canceled)

	// The queue still works, and nothing was lost to the failed calls.
	put(t, q, []byte("after"))
	get(t, q, []byte("after"))
}

func testSeal(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	q, other := openQ(t, u), openQ(t, u)
	for i := range 3 {
		put(t, q, msg(i, 8))
	}
	if err := q.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if err := q.Seal(); err != nil {
		t.Fatalf("Seal twice: %v", err)
	}
	// Every handle sees the seal, this one and another.
	for _, h := range []mpq.MessageQueue{q, other} {
		wantErr(t, "Put after Seal", h.Put(timeout(t, waitLong), []byte("late")), mpq.ErrSealed)
		wantErr(t, "TryPut after Seal", h.TryPut([]byte("late")), mpq.ErrSealed)
	}
	if err := other.Seal(); err != nil {
		t.Fatalf("Seal of a sealed queue from another handle: %v", err)
	}
	// What was put before the seal is all there, in order, then io.EOF.
	// (One handle takes them all: on NATS, it fetched them all.)
	get(t, other, msg(0, 8))
	d := receive(t, other)
	checkDelivery(t, d, msg(1, 8), 1)
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	get(t, other, msg(2, 8))
	wantEOF(t, q)
	wantEOF(t, other)
	// A handle opened after the seal sees it too.
	late := openQ(t, u)
	wantErr(t, "Put on a handle opened after Seal", late.Put(timeout(t, waitLong), []byte("late")), mpq.ErrSealed)
	wantEOF(t, late)
	if n := late.Len(); n != 0 {
		t.Fatalf("Len of a sealed, drained queue = %d", n)
	}
}

// Seal wakes consumers blocked on an empty queue, in this handle and others:
// they return io.EOF; and producers blocked on a full one: they return
// ErrSealed. (Within waitLong; NATS takes up to Options.Poll.)
func testSealWakesWaiters(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	a, c, sealer := openQ(t, u), openQ(t, u), openQ(t, u)
	const bound = 4
	fu := b.url(newName(t), params{bound: bound})
	full, fullSealer := openQ(t, fu), openQ(t, fu)
	fill(t, full, bound)
	get1 := async(func() result { m, err := a.Get(timeout(t, waitLong)); return result{data: m, err: err} })
	get2 := async(func() result { m, err := c.Get(timeout(t, waitLong)); return result{data: m, err: err} })
	recv := async(func() result { d, err := c.Receive(timeout(t, waitLong)); return result{d: d, err: err} })
	putting := async(func() result { return result{err: full.Put(timeout(t, waitLong), msg(bound, boundSize(bound)))} })
	stillBlocked(t, get1, "Get on an empty queue")
	stillBlocked(t, putting, "Put on a full queue")
	if err := sealer.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if err := fullSealer.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	for what, ch := range map[string]<-chan result{"Get": get1, "Get of another handle": get2, "Receive": recv} {
		if r := await(t, ch, what+" blocked when Seal came"); r.err != io.EOF {
			t.Fatalf("%s blocked when Seal came: %.10q, %v; want io.EOF", what, r.data, r.err)
		}
	}
	wantErr(t, "Put blocked when Seal came", await(t, putting, "Put blocked when Seal came").err, mpq.ErrSealed)
	// The full queue keeps its messages for the consumers.
	for i := range bound {
		get(t, fullSealer, msg(i, boundSize(bound)))
	}
	wantEOF(t, fullSealer)
}

// Once sealed, a queue with a delivery out is not done: consumers wait for
// its end, and get the message if it is given back.
func testSealWithDeliveryOut(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	q, c := openQ(t, u), openQ(t, u)
	put(t, q, []byte("held"))
	d := receive(t, q)
	if err := q.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	wantEmpty(t, c, "with the queue sealed and a delivery out")
	if _, err := c.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive, sealed with a delivery out: %v; want ErrEmpty", err)
	}
	waiting := async(func() result { m, err := c.Get(timeout(t, waitLong)); return result{data: m, err: err} })
	stillBlocked(t, waiting, "Get on a sealed queue with a delivery out")
	if err := d.Nack(); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	if r := await(t, waiting, "Get after the Nack"); r.err != nil || string(r.data) != "held" {
		t.Fatalf("Get after the Nack: %.10q, %v; want \"held\"", r.data, r.err)
	}
	wantEOF(t, c)
	wantEOF(t, q)
}

func testReceiveAck(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	q, other := openQ(t, u), openQ(t, u)
	put(t, q, []byte("a"))
	before := time.Now()
	d := receive(t, q)
	after := time.Now()
	checkDelivery(t, d, []byte("a"), 1)
	// The lease is the default, 30s (NATS counts it from the fetch, a
	// little before Receive returns).
	if dl := d.Deadline(); dl.Before(before.Add(25*time.Second)) || dl.After(after.Add(30*time.Second)) {
		t.Fatalf("Deadline %v from Receive, want about 30s", dl.Sub(before))
	}
	// Held, the message is not delivered to anyone else.
	if dd, err := other.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive on another handle while the only message is held: %v, %v; want ErrEmpty", dd, err)
	}
	wantEmpty(t, other, "on another handle while the only message is held")
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	wantErr(t, "Ack twice", d.Ack(), mpq.ErrAcked)
	wantErr(t, "Nack after Ack", d.Nack(), mpq.ErrAcked)
	wantErr(t, "NackAfter after Ack", d.NackAfter(time.Second), mpq.ErrAcked)
	wantErr(t, "Extend after Ack", d.Extend(time.Minute), mpq.ErrAcked)
	if dd, err := other.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive after the Ack: %v, %v; want ErrEmpty", dd, err)
	}
	put(t, other, []byte("b"))
	d2 := receive(t, q)
	checkDelivery(t, d2, []byte("b"), 1)
	if err := d2.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after all acknowledged = %d", n)
	}
	// Acknowledged means gone: sealed, the queue is done at once.
	sealEmpty(t, other)
}

// Nack gives the message back at once, delivered again with its count.
func testNack(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	q, other := openQ(t, u), openQ(t, u)
	put(t, q, []byte("a"))
	d := receive(t, q)
	checkDelivery(t, d, []byte("a"), 1)
	if err := d.Nack(); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	wantErr(t, "Ack after Nack", d.Ack(), mpq.ErrAcked)
	wantErr(t, "Nack twice", d.Nack(), mpq.ErrAcked)
	// Given back, the message can go to any handle, at once.
	d2, err := other.TryReceive()
	if err != nil {
		t.Fatalf("TryReceive right after Nack: %v", err)
	}
	checkDelivery(t, d2, []byte("a"), 2)
	if err := d2.Nack(); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	d3 := receive(t, q)
	checkDelivery(t, d3, []byte("a"), 3)
	if err := d3.Ack(); err != nil {
		t.Fatalf("Ack of the third delivery: %v", err)
	}
	sealEmpty(t, q)
}

// A message given back comes before the messages put after it. (Receive
// fetches one message at a time on NATS, so none are fetched ahead.)
func testNackOrder(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{}))
	for _, m := range []string{"a", "b", "c"} {
		put(t, q, []byte(m))
	}
	d := receive(t, q)
	checkDelivery(t, d, []byte("a"), 1)
	if err := d.Nack(); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	type want struct {
		m     string
		count int
	}
	order := []want{{"a", 2}, {"b", 1}, {"c", 1}}
	for _, w := range order {
		d := receive(t, q)
		checkDelivery(t, d, []byte(w.m), w.count)
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	sealEmpty(t, q)
}

func testNackAfter(t *testing.T, b backend) {
	const delay = 1500 * time.Millisecond
	q := openQ(t, b.url(newName(t), params{}))
	put(t, q, []byte("a"))
	d := receive(t, q)
	start := time.Now()
	if err := d.NackAfter(delay); err != nil {
		t.Fatalf("NackAfter: %v", err)
	}
	if dd, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive right after NackAfter(%v): %v (%v); want ErrEmpty", delay, dd, err)
	}
	d2 := receive(t, q)
	// No sooner than the delay: a lower bound, not a measure of speed.
	if el := time.Since(start); el < delay {
		t.Fatalf("delivered again %v after NackAfter(%v)", el, delay)
	}
	checkDelivery(t, d2, []byte("a"), 2)
	if err := d2.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	sealEmpty(t, q)
}

// A delivery neither acknowledged nor given back comes back once its lease
// ends; the first consumer no longer holds it.
func testLeaseExpiry(t *testing.T, b backend) {
	u := b.url(newName(t), params{lease: shortLease})
	q, other := openQ(t, u), openQ(t, u)
	put(t, q, []byte("a"))
	d1 := receive(t, q)
	checkDelivery(t, d1, []byte("a"), 1)
	d2 := receive(t, other) // waits for the lease to end
	checkDelivery(t, d2, []byte("a"), 2)
	wantErr(t, "Ack of a delivery whose lease ended", d1.Ack(), mpq.ErrLeaseExpired)
	wantErr(t, "Nack of a delivery whose lease ended", d1.Nack(), mpq.ErrLeaseExpired)
	wantErr(t, "Extend of a delivery whose lease ended", d1.Extend(time.Minute), mpq.ErrLeaseExpired)
	if err := d2.Ack(); err != nil {
		t.Fatalf("Ack of the second delivery: %v", err)
	}
	wantErr(t, "Ack twice", d2.Ack(), mpq.ErrAcked)
	sealEmpty(t, q)
}

// Ack after the lease ended, before anything gave the message back: shared
// memory takes it, NATS refuses it (lateAckExpires). Either way the message
// is then acknowledged exactly once.
func testAckAfterLease(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{lease: shortLease}))
	put(t, q, []byte("a"))
	d := receive(t, q)
	time.Sleep(time.Until(d.Deadline()) + 500*time.Millisecond)
	err := d.Ack()
	if b.lateAckExpires {
		wantErr(t, "Ack after the lease", err, mpq.ErrLeaseExpired)
		d2 := receive(t, q)
		checkDelivery(t, d2, []byte("a"), 2)
		if err := d2.Ack(); err != nil {
			t.Fatalf("Ack of the second delivery: %v", err)
		}
	} else if err != nil {
		t.Fatalf("Ack after the lease, nothing having given the message back: %v", err)
	}
	sealEmpty(t, q)
}

// Extend keeps a delivery past its first lease.
func testExtend(t *testing.T, b backend) {
	const lease = 4 * time.Second
	u := b.url(newName(t), params{lease: lease})
	q, other := openQ(t, u), openQ(t, u)
	put(t, q, []byte("a"))
	d := receive(t, q)
	first := d.Deadline()
	time.Sleep(lease * 5 / 8)
	if err := d.Extend(lease); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if !d.Deadline().After(first) {
		t.Fatalf("Deadline %v after Extend, was %v", d.Deadline(), first)
	}
	time.Sleep(time.Until(first) + 200*time.Millisecond) // past the first lease
	if dd, err := other.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryReceive of an extended delivery past its first lease: %v, %v", dd, err)
	}
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack within the extended lease: %v", err)
	}
	sealEmpty(t, q)
}

func testLen(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{}))
	wantLen := func(want int, when string) {
		t.Helper()
		if n := q.Len(); n != want {
			t.Fatalf("Len %s = %d, want %d", when, n, want)
		}
	}
	wantLen(0, "of a new queue")
	for i := range 5 {
		put(t, q, msg(i, 8))
	}
	wantLen(5, "after 5 Puts")
	get(t, q, msg(0, 8))
	wantLen(4, "after a Get")
	d := receive(t, q)
	wantLen(3, "with a delivery out")
	if err := d.Nack(); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	if b.lenSkipsGivenBack {
		wantLen(3, "with a message given back")
	} else {
		wantLen(4, "with a message given back")
	}
	for range 4 {
		d := receive(t, q)
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	wantLen(0, "after all")
}

func testClose(t *testing.T, b backend) {
	u := b.url(newName(t), params{})
	q, other := openQ(t, u), openQ(t, u)
	put(t, q, []byte("a"))
	put(t, q, []byte("b"))
	put(t, q, []byte("c"))
	get(t, q, []byte("a")) // NATS: the handle fetches b and c too
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := timeout(t, waitLong)
	wantErr(t, "Put after Close", q.Put(ctx, []byte("x")), mpq.ErrClosed)
	wantErr(t, "TryPut after Close", q.TryPut([]byte("x")), mpq.ErrClosed)
	_, err := q.Get(ctx)
	wantErr(t, "Get after Close", err, mpq.ErrClosed)
	_, err = q.TryGet()
	wantErr(t, "TryGet after Close", err, mpq.ErrClosed)
	_, err = q.Receive(ctx)
	wantErr(t, "Receive after Close", err, mpq.ErrClosed)
	_, err = q.TryReceive()
	wantErr(t, "TryReceive after Close", err, mpq.ErrClosed)
	wantErr(t, "Seal after Close", q.Seal(), mpq.ErrClosed)
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after Close = %d, want 0", n)
	}
	wantErr(t, "Close twice", q.Close(), mpq.ErrClosed)

	// The queue and its messages outlive the handle: b and c are there for
	// another handle at once, not after a lease (30s, longer than the wait).
	ctx = timeout(t, 20*time.Second)
	for _, want := range []string{"b", "c"} {
		m, err := other.Get(ctx)
		if err != nil || string(m) != want {
			t.Fatalf("Get on another handle after Close: %.10q, %v; want %q", m, err, want)
		}
	}
	// The closed handle sealed nothing.
	put(t, other, []byte("d"))
	get(t, other, []byte("d"))
}

// Close wakes the handle's blocked calls, which return ErrClosed.
func testCloseWakesWaiters(t *testing.T, b backend) {
	const bound = 4
	full := openQ(t, b.url(newName(t), params{bound: bound}))
	fill(t, full, bound)
	empty := openQ(t, b.url(newName(t), params{}))
	ctx := timeout(t, waitLong)
	putting := async(func() result { return result{err: full.Put(ctx, msg(bound, boundSize(bound)))} })
	getting := async(func() result { m, err := empty.Get(ctx); return result{data: m, err: err} })
	receiving := async(func() result { d, err := empty.Receive(ctx); return result{d: d, err: err} })
	stillBlocked(t, putting, "Put on a full queue")
	stillBlocked(t, getting, "Get on an empty queue")
	if err := full.Close(); err != nil {
		t.Fatalf("Close with a Put blocked: %v", err)
	}
	if err := empty.Close(); err != nil {
		t.Fatalf("Close with a Get and a Receive blocked: %v", err)
	}
	for what, ch := range map[string]<-chan result{"Put": putting, "Get": getting, "Receive": receiving} {
		wantErr(t, what+" blocked when Close came", await(t, ch, what+" blocked when Close came").err, mpq.ErrClosed)
	}
}

// Producers and consumers, each on a handle of its own, on a small queue that
// keeps producers waiting: every message is delivered exactly once, and each
// consumer sees each producer's messages in the order they were put.
func testManyProducersConsumers(t *testing.T, b backend) {
	const (
		producers = 4
		consumers = 4
		perProd   = 150
		bound     = 16
	)
	size := boundSize(bound)
	u := b.url(newName(t), params{bound: bound})
	ctx := timeout(t, 2*waitLong)
	var pwg sync.WaitGroup
	perr := make(chan error, producers)
	for p := range producers {
		q := openQ(t, u)
		pwg.Go(func() {
			for i := range perProd {
				if err := q.Put(ctx, msg(p*perProd+i, size)); err != nil {
					perr <- fmt.Errorf("producer %d, message %d: %w", p, i, err)
					return
				}
			}
		})
	}
	got := make([][]int, consumers)
	cerr := make(chan error, consumers)
	var cwg sync.WaitGroup
	for c := range consumers {
		q := openQ(t, u)
		cwg.Go(func() {
			for {
				m, err := q.Get(ctx)
				if err == io.EOF {
					return
				}
				if err != nil {
					cerr <- fmt.Errorf("consumer %d: %w", c, err)
					return
				}
				n, err := strconv.Atoi(string(bytes.TrimRight(m[1:], ".")))
				if err != nil || len(m) != size {
					cerr <- fmt.Errorf("consumer %d: bad message %.20q", c, m)
					return
				}
				got[c] = append(got[c], n)
			}
		})
	}
	pwg.Wait()
	close(perr)
	for err := range perr {
		t.Error(err)
	}
	sealer := openQ(t, u)
	if err := sealer.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	cwg.Wait()
	close(cerr)
	for err := range cerr {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	checkOnceInOrder(t, got, producers, perProd)
	t.Logf("consumers took %d, %d, %d, %d messages", len(got[0]), len(got[1]), len(got[2]), len(got[3]))
}

// checkOnceInOrder checks what consumers got (got[c], the numbers of the
// messages consumer c took, in order) from producers that each put perProd
// messages, producer p numbering its messages from p*perProd: every message
// was taken exactly once, and each consumer took each producer's messages
// in the order they were put.
func checkOnceInOrder(t *testing.T, got [][]int, producers, perProd int) {
	t.Helper()
	seen := make([]int, producers*perProd)
	for c, ns := range got {
		last := make([]int, producers)
		for p := range last {
			last[p] = -1
		}
		for _, n := range ns {
			if n < 0 || n >= len(seen) {
				t.Fatalf("consumer %d got message %d, never put", c, n)
			}
			seen[n]++
			p, i := n/perProd, n%perProd
			if i <= last[p] {
				t.Errorf("consumer %d got producer %d's message %d after its message %d", c, p, i, last[p])
			}
			last[p] = i
		}
	}
	for n, k := range seen {
		if k != 1 {
			t.Errorf("message %d delivered %d times", n, k)
		}
	}
}

// dlqTake waits until the dead-letter queue dlq holds want, checking all the
// while that main never delivers anything: a message past MaxDeliveries goes
// to the dead-letter queue (when a consumer of main next looks) and is not
// delivered again.
func dlqTake(t *testing.T, main, dlq mpq.MessageQueue, want []byte) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		if d, err := main.TryReceive(); err == nil {
			t.Fatalf("delivered past MaxDeliveries: %.10q, count %d", d.Data(), d.Count())
		} else if !errors.Is(err, mpq.ErrEmpty) {
			t.Fatalf("TryReceive: %v", err)
		}
		m, err := dlq.TryGet()
		if err == nil {
			if !bytes.Equal(m, want) {
				t.Fatalf("dead-letter queue holds %.10q, want %.10q", m, want)
			}
			return
		}
		if !errors.Is(err, mpq.ErrEmpty) {
			t.Fatalf("TryGet on the dead-letter queue: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%.10q not in the dead-letter queue after %v", want, waitLong)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testMaxDeliveriesDeadLetter(t *testing.T, b backend) {
	name := newName(t)
	dead := name + "-dead"
	q := openQ(t, b.url(name, params{maxDeliveries: 2, deadLetter: dead}))
	dlq := openQ(t, b.url(dead, params{}))
	put(t, q, []byte("poison"))
	for count := 1; count <= 2; count++ {
		d := receive(t, q)
		checkDelivery(t, d, []byte("poison"), count)
		if err := d.Nack(); err != nil {
			t.Fatalf("Nack of delivery %d: %v", count, err)
		}
	}
	dlqTake(t, q, dlq, []byte("poison"))
	// The queue goes on with the next message; the poison is not there.
	put(t, q, []byte("good"))
	d := receive(t, q)
	checkDelivery(t, d, []byte("good"), 1)
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	sealEmpty(t, q)
	wantEmpty(t, dlq, "on the dead-letter queue, after the one it should hold")
}

// A lease that ends counts as a delivery too.
func testMaxDeliveriesLease(t *testing.T, b backend) {
	name := newName(t)
	dead := name + "-dead"
	q := openQ(t, b.url(name, params{maxDeliveries: 1, deadLetter: dead, lease: shortLease}))
	dlq := openQ(t, b.url(dead, params{}))
	put(t, q, []byte("slow"))
	d := receive(t, q)
	checkDelivery(t, d, []byte("slow"), 1)
	time.Sleep(time.Until(d.Deadline()))
	dlqTake(t, q, dlq, []byte("slow"))
	wantErr(t, "Ack of a dead-lettered delivery", d.Ack(), mpq.ErrLeaseExpired)
	sealEmpty(t, q)
}

// With no dead-letter queue, a message past MaxDeliveries is dropped.
func testMaxDeliveriesDrop(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{maxDeliveries: 1}))
	put(t, q, []byte("drop"))
	put(t, q, []byte("keep"))
	d := receive(t, q)
	checkDelivery(t, d, []byte("drop"), 1)
	if err := d.Nack(); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	d = receive(t, q)
	checkDelivery(t, d, []byte("keep"), 1)
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	sealEmpty(t, q)
}

func testTooLarge(t *testing.T, b backend) {
	const max = 100
	q := openQ(t, b.url(newName(t), params{maxMessage: max}))
	big := bytes.Repeat([]byte{'x'}, max+1)
	wantErr(t, "Put of a message over the maximum", q.Put(timeout(t, waitLong), big), mpq.ErrTooLarge)
	wantErr(t, "TryPut of a message over the maximum", q.TryPut(big), mpq.ErrTooLarge)
	put(t, q, big[:max])
	get(t, q, big[:max])
	wantEmpty(t, q, "after a message too large")
}

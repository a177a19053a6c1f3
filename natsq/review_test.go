package natsq_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
)

// A dead-letter queue that is full does not lose the message, nor let it
// stick: it is dead-lettered once there is room, and never delivered again
// meanwhile.
func testMaxDeliveriesFullDeadLetter(t *testing.T, b backend) {
	name := newName(t)
	dead := name + "-dead"
	dlq := openQ(t, b.url(dead, params{bound: 2}))
	filler := msg(0, boundSize(2))
	put(t, dlq, filler)
	put(t, dlq, filler)
	wantErr(t, "TryPut on the full dead-letter queue", dlq.TryPut(filler), mpq.ErrFull)

	q := openQ(t, b.url(name, params{maxDeliveries: 1, deadLetter: dead}))
	put(t, q, []byte("poison"))
	d := receive(t, q)
	checkDelivery(t, d, []byte("poison"), 1)
	if err := d.Nack(); err != nil {
		t.Fatalf("Nack of the last delivery, dead-letter queue full: %v", err)
	}
	// Not delivered again, whatever happens meanwhile.
	for range 5 {
		if d, err := q.TryReceive(); err == nil {
			t.Fatalf("delivered past MaxDeliveries while the dead-letter queue was full: %.10q, count %d", d.Data(), d.Count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	get(t, dlq, filler) // room for one
	dlqTake(t, q, dlq, filler)
	dlqTake(t, q, dlq, []byte("poison"))
	sealEmpty(t, q)
}

// Ack, Nack and Extend of a Delivery whose handle is closed return
// ErrClosed; the message is not lost, and comes again on another handle.
func testDeliveryAfterClose(t *testing.T, b backend) {
	u := b.url(newName(t), params{lease: shortLease})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	q, err := mpq.OpenURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	put(t, q, []byte("held"))
	d := receive(t, q)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantErr(t, "Ack after Close", d.Ack(), mpq.ErrClosed)
	wantErr(t, "Nack after Close", d.Nack(), mpq.ErrClosed)
	wantErr(t, "Extend after Close", d.Extend(time.Minute), mpq.ErrClosed)
	other := openQ(t, u)
	d = receive(t, other)
	if !bytes.Equal(d.Data(), []byte("held")) || d.Count() < 2 {
		t.Fatalf("after the handle closed: %.10q, count %d; want \"held\", count >= 2", d.Data(), d.Count())
	}
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	sealEmpty(t, other)
}

// A Get whose context ends while a message is on its way loses nothing: the
// message is there for the next Get at once, not after a lease.
func testCancelledGetKeeps(t *testing.T, b backend) {
	q := openQ(t, b.url(newName(t), params{}))
	const n = 60
	got := map[string]int{}
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan []byte, 1)
		go func() {
			m, err := q.Get(ctx)
			if err != nil {
				m = nil
			}
			res <- m
		}()
		time.Sleep(5 * time.Millisecond) // the Get is waiting at the server
		put(t, q, msg(i, 8))
		time.Sleep(time.Duration(i%10) * 50 * time.Microsecond)
		cancel()
		if m := <-res; m != nil {
			got[string(m)]++
		}
	}
	// The rest come at once: well within the 30s lease.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		m, err := q.Get(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got[string(m)]++
	}
	for i := range n {
		if c := got[string(msg(i, 8))]; c != 1 {
			t.Errorf("message %d taken %d times; want 1", i, c)
		}
	}
	if len(got) != n {
		t.Errorf("got %d distinct messages; want %d", len(got), n)
	}
}

package mpq

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/mpq-go/mpq/internal/ring"
)

// MaxInFlight is how many deliveries of one queue may be held at once
// (received and neither acknowledged nor given back, or given back and not
// yet delivered again), across all processes. Receive waits while the table
// of deliveries is full.
const MaxInFlight = ring.MaxInFlight

// MaxLease is the longest lease ([Options].Lease, [Delivery.Extend]) and
// the longest delay of [Delivery.NackAfter]: a year. A longer one is
// refused with an error wrapping ErrInvalidOptions, and nothing changes.
// (A lease deadline is kept in nanoseconds since 1970, which a duration
// near math.MaxInt64 would overflow.) To hold a message longer, Extend its
// lease again before it ends.
const MaxLease = 365 * 24 * time.Hour

// A Delivery is a message received with [Queue.Receive]. The message stays
// in the queue, held for this consumer, until Ack. Nack gives it back to be
// delivered again; so does the end of the lease, or the death of the
// consumer's process. A Delivery is meant for one goroutine, and is used
// through the pointer Receive returns: a copy of one settles the original.
type Delivery struct {
	data     []byte
	count    uint32
	deadline int64 // of the lease, in nanoseconds since 1970
	done     bool
	a        Acknowledger // settles it: &held for a Delivery of a Queue
	held     heldRecord
}

// An Acknowledger settles deliveries: those of shared memory, and behind
// [NewDelivery] those of other backends. The Delivery calls at most one of Ack and
// Nack successfully, and none after; Extend may come before.
type Acknowledger interface {
	// Ack acknowledges the message.
	Ack() error
	// Nack gives the message back, to be delivered again after delay.
	Nack(delay time.Duration) error
	// Extend moves the end of the lease to lease from now and returns it.
	Extend(lease time.Duration) (time.Time, error)
}

// NewDelivery returns a Delivery of data, delivered count times, whose
// lease ends at deadline and which a settles. It is for backends of
// [MessageQueue] other than shared memory, such as github.com/mpq-go/mpq/natsq; a program
// using them receives Deliveries from Receive like any other.
func NewDelivery(data []byte, count int, deadline time.Time, a Acknowledger) *Delivery {
	return &Delivery{data: data, a: a, count: uint32(max(min(count, math.MaxUint32), 0)), deadline: deadline.UnixNano()}
}

// newDelivery is the Delivery of a message of q that this process holds.
func newDelivery(q *Queue, data []byte, d ring.Delivery) *Delivery {
	del := &Delivery{data: data, count: d.Count, deadline: d.Deadline, held: heldRecord{q: q, d: d}}
	del.a = &del.held
	return del
}

// A heldRecord is the Acknowledger of a message held in a Queue's ring.
type heldRecord struct {
	q *Queue
	d ring.Delivery
}

func (h *heldRecord) Ack() error { return h.q.r.Ack(h.d) }

func (h *heldRecord) Nack(delay time.Duration) error {
	return h.q.r.Nack(h.d, time.Now().Add(delay).UnixNano())
}

func (h *heldRecord) Extend(lease time.Duration) (time.Time, error) {
	dl := time.Now().Add(lease)
	if err := h.q.r.Extend(h.d, dl.UnixNano()); err != nil {
		return time.Time{}, err
	}
	h.d.Deadline = dl.UnixNano()
	return dl, nil
}

// Errors of acknowledgement mode.
var (
	// ErrLeaseExpired is returned by Ack, Nack and Extend when this
	// consumer no longer holds the message: its lease ran out (or its
	// process was thought dead) and the message was given back, perhaps
	// delivered again already.
	ErrLeaseExpired = ring.ErrLeaseExpired
	// ErrAcked is returned by Ack, Nack and Extend on a Delivery that was
	// already acknowledged or given back.
	ErrAcked = errors.New("mpq: delivery already acknowledged or given back")
)

// Data returns the message. It is the caller's and stays valid after Ack.
func (d *Delivery) Data() []byte { return d.data }

// Count is how many times the message has been delivered by Receive, this
// delivery included: 1 the first time.
func (d *Delivery) Count() int { return int(d.count) }

// Deadline is when the lease of this delivery ends, unless extended.
func (d *Delivery) Deadline() time.Time { return time.Unix(0, d.deadline) }

// Ack acknowledges the message: it is done and leaves the queue. After the
// lease ended and the message was given back, Ack returns ErrLeaseExpired
// (the message will be, or was, delivered again).
func (d *Delivery) Ack() error {
	return d.settle(d.a.Ack)
}

// Nack gives the message back to the queue, to be delivered again before
// the messages put after it.
func (d *Delivery) Nack() error { return d.NackAfter(0) }

// NackAfter gives the message back to the queue, to be delivered again no
// sooner than delay from now (to within the 50 ms a waiting consumer may
// sleep). A delay of zero or less gives it back at once, as Nack. A delay
// over [MaxLease] is refused with an error wrapping ErrInvalidOptions; the
// message stays held.
func (d *Delivery) NackAfter(delay time.Duration) error {
	if d.done {
		return ErrAcked
	}
	if delay > MaxLease {
		return fmt.Errorf("%w: NackAfter delay %v over MaxLease %v", ErrInvalidOptions, delay, MaxLease)
	}
	return d.settle(func() error { return d.a.Nack(max(delay, 0)) })
}

// settle runs an acknowledgement once.
func (d *Delivery) settle(f func() error) error {
	if d.done {
		return ErrAcked
	}
	err := f()
	if err == nil {
		d.done = true
	}
	return err
}

// Extend moves the end of the lease to lease from now. A lease of zero or
// less, or over [MaxLease], is refused with an error wrapping
// ErrInvalidOptions, and the lease stays as it was.
func (d *Delivery) Extend(lease time.Duration) error {
	if d.done {
		return ErrAcked
	}
	if lease <= 0 || lease > MaxLease {
		return fmt.Errorf("%w: lease %v, not in (0, MaxLease %v]", ErrInvalidOptions, lease, MaxLease)
	}
	t, err := d.a.Extend(lease)
	if err == nil {
		d.deadline = t.UnixNano()
	}
	return err
}

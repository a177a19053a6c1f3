package natsq

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// acker settles one delivery from Receive (mpq.Acknowledger).
type acker struct {
	q        *Queue
	m        jetstream.Msg
	count    int
	deadline time.Time
}

// delivery wraps h, received from the server, as an mpq.Delivery whose
// count is the server's count of its deliveries.
func (q *Queue) delivery(h held) *mpq.Delivery {
	count := 1
	if md, err := h.m.Metadata(); err == nil {
		count = int(min(md.NumDelivered, 1<<31))
	}
	a := &acker{q: q, m: h.m, count: count, deadline: h.deadline}
	return mpq.NewDelivery(h.m.Data(), count, h.deadline, a)
}

// begin enters the handle for a settlement: mpq.ErrClosed once it is
// closed, as on shared memory, and mpq.ErrLeaseExpired once the lease has
// ended (the server gives the message to another consumer then, so this one
// no longer holds it). On nil, the caller must call a.q.leave.
func (a *acker) begin() error {
	if !a.q.enter() {
		return mpq.ErrClosed
	}
	if time.Now().After(a.deadline) {
		a.q.leave()
		return fmt.Errorf("%w: queue %s, lease ended %v ago", mpq.ErrLeaseExpired, a.q.name, time.Since(a.deadline).Round(time.Millisecond))
	}
	return nil
}

// Ack acknowledges the message and waits for the server to confirm it.
func (a *acker) Ack() error {
	if err := a.begin(); err != nil {
		return err
	}
	defer a.q.leave()
	ctx, cancel := context.WithTimeout(context.Background(), a.q.opts.Timeout)
	defer cancel()
	if err := a.m.DoubleAck(ctx); err != nil {
		return fmt.Errorf("natsq: ack on %s: %w", a.q.name, err)
	}
	return nil
}

// Nack gives the message back to be delivered again after delay, and waits
// for the server to confirm it; past its last delivery it goes to the
// dead-letter queue instead (or, if that queue does not take it now, comes
// back to be dead-lettered later).
func (a *acker) Nack(delay time.Duration) error {
	if err := a.begin(); err != nil {
		return err
	}
	defer a.q.leave()
	if max := a.q.opts.MaxDeliveries; max > 0 && a.count >= max {
		return a.q.deadLetter(a.m)
	}
	// A request rather than Nak's publish: the server answers once the
	// message is back in the consumer, so that, as on shared memory, the
	// next Receive may have it.
	body := []byte("-NAK")
	if delay > 0 {
		body = fmt.Appendf(nil, "-NAK {\"delay\": %d}", delay.Nanoseconds())
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.q.opts.Timeout)
	defer cancel()
	if _, err := a.q.nc.RequestWithContext(ctx, a.m.Reply(), body); err != nil {
		return fmt.Errorf("natsq: nack on %s: %w", a.q.name, err)
	}
	return nil
}

// Extend tells the server the message is in progress, which restarts its
// AckWait: the lease becomes the consumer's whole AckWait from now, whatever
// lease asks for.
func (a *acker) Extend(time.Duration) (time.Time, error) {
	if err := a.begin(); err != nil {
		return time.Time{}, err
	}
	defer a.q.leave()
	start := time.Now()
	if err := a.m.InProgress(); err != nil {
		return time.Time{}, fmt.Errorf("natsq: extend on %s: %w", a.q.name, err)
	}
	a.deadline = start.Add(a.q.opts.AckWait)
	return a.deadline, nil
}

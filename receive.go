package mpq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mpq-go/mpq/internal/ring"
)

// Receive takes the next message in acknowledgement mode, waiting while
// there is none: messages given back come first, then the oldest waiting.
// The message stays in the queue until the returned Delivery is
// acknowledged; it is delivered again if the Delivery is given back, its
// lease (Options.Lease) ends, or this process dies first. Once the queue is
// sealed, drained and no delivery is outstanding, Receive returns io.EOF;
// if ctx is done first, ctx.Err().
//
// A message given back after Options.MaxDeliveries deliveries goes to the
// dead-letter queue instead of being delivered again.
func (q *Queue) Receive(ctx context.Context) (*Delivery, error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	return q.receive(ctx, false)
}

// TryReceive is Receive without waiting: it returns ErrEmpty if no message
// is ready now.
func (q *Queue) TryReceive() (*Delivery, error) {
	return q.receive(context.Background(), true)
}

func (q *Queue) receive(ctx context.Context, try bool) (*Delivery, error) {
	for {
		var (
			data []byte
			d    ring.Delivery
			err  error
		)
		data, d, err = q.r.Receive(nil, q.lease, ring.Try)
		if again(err) {
			if try {
				return nil, ErrEmpty
			}
			err = q.block(ctx, forData, q.r.HasData, func(done <-chan struct{}) error {
				var err error
				data, d, err = q.r.Receive(nil, q.lease, ring.Block(done))
				return err
			})
		}
		if err != nil {
			return nil, err
		}
		if data == nil {
			data = []byte{}
		}
		if m := q.r.Geometry().MaxDeliveries; m > 0 && d.Count > m {
			if err := q.deadLetter(data, d); err != nil {
				return nil, err
			}
			continue
		}
		return newDelivery(q, data, d), nil
	}
}

// deadLetter moves a message delivered too often to the dead-letter queue.
// If that queue is full, the message is given back for a later try.
func (q *Queue) deadLetter(data []byte, d ring.Delivery) error {
	name := q.r.Geometry().DeadLetter
	if name == "" {
		return q.r.DeadLettered(d)
	}
	dq, err := q.deadQueue(name)
	if err == nil {
		err = dq.TryPut(data)
	}
	if err != nil {
		if e := q.r.Nack(d, time.Now().Add(deadRetry).UnixNano()); e != nil {
			return e
		}
		if errors.Is(err, ErrFull) {
			return nil
		}
		return fmt.Errorf("mpq: dead-letter queue %s: %w", name, err)
	}
	if err := q.r.DeadLettered(d); err != nil && !errors.Is(err, ErrLeaseExpired) {
		return err
	}
	return nil
}

// deadRetry is how long a message waits before another try at putting it in
// a full or failing dead-letter queue.
const deadRetry = 100 * time.Millisecond

func (q *Queue) deadQueue(name string) (*Queue, error) {
	q.deadMu.Lock()
	defer q.deadMu.Unlock()
	if q.dead != nil {
		return q.dead, nil
	}
	g := q.r.Geometry()
	dq, err := Open(name, &Options{Dir: q.dir, Capacity: int(g.Capacity), MaxMessage: int(g.MaxMessage), Durable: g.Durable, Spin: -1})
	if err != nil {
		return nil, err
	}
	select {
	case <-q.closed: // Close ran meanwhile and will not close it
		dq.Close()
		return nil, ErrClosed
	default:
	}
	q.dead = dq
	return dq, nil
}

// Join waits until every message put before the call, by any process, has
// been taken by Get or received and acknowledged (or dead-lettered), like
// Python's JoinableQueue.join. A message given back still counts as not
// done. It returns ctx.Err() if ctx is done first.
func (q *Queue) Join(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	if !q.enter() {
		return ErrClosed
	}
	target, _ := q.r.Positions()
	q.leave()
	// A queue found corrupt ends the wait: its positions may never move.
	reached := func() bool {
		_, free := q.r.Positions()
		return free >= target || q.r.Corrupted() != nil
	}
	return q.block(ctx, forSpace, reached, func(<-chan struct{}) error {
		if q.r.Closed() {
			return ErrClosed
		}
		if err := q.r.Corrupted(); err != nil {
			return err
		}
		if reached() {
			if err := q.r.Faulted(); err != nil { // Positions says 0 after a fault
				return err
			}
			return nil
		}
		return ErrEmpty
	})
}

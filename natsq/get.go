package natsq

import (
	"context"
	"fmt"

	"github.com/mpq-go/mpq"
)

// Get takes the next message, waiting while there is none. Once the queue is
// sealed and every message acknowledged, it returns io.EOF; if ctx is done
// first, ctx.Err(). The message is acknowledged as Get returns it.
func (q *Queue) Get(ctx context.Context) ([]byte, error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	return q.get(ctx, true)
}

// TryGet takes the next message, or returns mpq.ErrEmpty if there is none
// (io.EOF if the queue is sealed and done).
func (q *Queue) TryGet() ([]byte, error) { return q.get(context.Background(), false) }

// get takes the next message and acknowledges it without waiting for the
// server.
func (q *Queue) get(ctx context.Context, wait bool) ([]byte, error) {
	h, err := q.nextHeld(ctx, wait, q.opts.Prefetch)
	if err != nil {
		return nil, err
	}
	data := h.m.Data()
	if err := h.m.Ack(); err != nil {
		return nil, fmt.Errorf("natsq: ack on %s: %w", q.name, err)
	}
	return data, nil
}

// Receive takes the next message in acknowledgement mode, waiting while
// there is none: it stays in the queue until the Delivery's Ack, and is
// delivered again after Nack or the end of its lease (the consumer's
// AckWait). Once the queue is sealed and every message acknowledged, it
// returns io.EOF; if ctx is done first, ctx.Err().
func (q *Queue) Receive(ctx context.Context) (*mpq.Delivery, error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	h, err := q.nextHeld(ctx, true, 1)
	if err != nil {
		return nil, err
	}
	return q.delivery(h), nil
}

// TryReceive is Receive without waiting: mpq.ErrEmpty if no message is
// waiting.
func (q *Queue) TryReceive() (*mpq.Delivery, error) {
	h, err := q.nextHeld(context.Background(), false, 1)
	if err != nil {
		return nil, err
	}
	return q.delivery(h), nil
}

// nextHeld returns the next message for this handle: one fetched before, or
// the first of a new batch of up to batch messages.
func (q *Queue) nextHeld(ctx context.Context, wait bool, batch int) (held, error) {
	if !q.enter() {
		return held{}, mpq.ErrClosed
	}
	defer q.leave()
	// A message fetched before needs no request to the server, so no
	// binding of ctx to Close either.
	for {
		h, ok := q.pop()
		if !ok {
			break
		}
		if !q.deadLettered(h) {
			return h, nil
		}
	}
	ctx, done := q.bind(ctx)
	h, err := q.nextWait(ctx, wait, batch)
	return h, done(err)
}

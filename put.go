package mpq

import (
	"context"
	"fmt"

	"github.com/mpq-go/mpq/internal/ring"
)

// Put appends msg to the queue, waiting while the queue is full. It returns
// once msg is in the queue, or with ctx.Err() if ctx is done first, ErrSealed
// if the queue is sealed, or ErrTooLarge if msg is longer than the queue's
// maximum message size. Put copies msg; the caller may reuse it at once. On
// a durable queue with the default sync policy, Put returns once msg is on
// disk; an error of that flush is returned, with msg in the queue.
func (q *Queue) Put(ctx context.Context, msg []byte) error {
	if ctx == nil {
		return ErrNilContext
	}
	err := q.r.Put(msg, ring.Try)
	if again(err) {
		err = q.putSlow(ctx, msg)
	}
	if err == nil && (q.syncPut || q.syncer != nil) {
		return q.afterPut()
	}
	if err == ring.ErrTooLarge {
		return q.tooLarge(len(msg), "message")
	}
	return err
}

// tooLarge is the error of a Put of a message of n bytes over the queue's
// maximum; which names the message ("message", or which one of a batch).
func (q *Queue) tooLarge(n int, which string) error {
	name := "the anonymous queue"
	if q.name != "" {
		name = "queue " + q.name
	}
	return fmt.Errorf("%w: %s of %d bytes, the most %s takes is %d (set a larger Options.MaxMessage when the queue is created)",
		ErrTooLarge, which, n, name, q.r.MaxMessage())
}

func (q *Queue) putSlow(ctx context.Context, msg []byte) error {
	need := len(msg)
	return q.block(ctx, forSpace, func() bool { return q.r.HasSpace(need) }, func(done <-chan struct{}) error {
		err := q.r.Put(msg, ring.Block(done))
		return err
	})
}

// TryPut is Put without waiting: it returns ErrFull if the queue has no room
// for msg now (or another process is in the middle of a Put for longer than
// about a millisecond).
func (q *Queue) TryPut(msg []byte) error {
	err := q.r.Put(msg, ring.Try)
	if err == ring.ErrBusy {
		err = ErrFull
	}
	if err == nil && (q.syncPut || q.syncer != nil) {
		return q.afterPut()
	}
	if err == ring.ErrTooLarge {
		return q.tooLarge(len(msg), "message")
	}
	return err
}

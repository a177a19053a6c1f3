package mpq

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mpq-go/mpq/internal/ring"
)

// minBatchBytes is the least GetBatch may fill a Batch's buffer to.
const minBatchBytes = 64 << 10

// A Batch holds messages received by [Queue.GetBatch] in one reusable
// buffer, so that receiving many small messages allocates nothing once the
// buffer has grown. The zero Batch is ready to use.
type Batch struct {
	buf  []byte
	ends []int
}

// Len is the number of messages in the batch.
func (b *Batch) Len() int { return len(b.ends) }

// Message returns message i (0 <= i < Len). It aliases the batch's buffer and
// is valid until the next Reset or GetBatch into b.
func (b *Batch) Message(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]:b.ends[i]]
}

// Reset empties the batch, keeping its buffers.
func (b *Batch) Reset() { b.buf, b.ends = b.buf[:0], b.ends[:0] }

// PutBatch puts msgs in order, as many at a time as fit, waiting while the
// queue is full. It returns how many were put: all of them unless err is not
// nil. A message over the maximum size fails the call with ErrTooLarge
// before anything is written.
func (q *Queue) PutBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if ctx == nil {
		return 0, ErrNilContext
	}
	total := 0
	var err error
	for len(msgs) > 0 {
		var n int
		n, err = q.r.PutBatch(msgs, ring.Try)
		if again(err) {
			n = 0
			err = q.putSlow(ctx, msgs[0])
			if err == nil {
				n = 1
			}
		}
		if err == ErrTooLarge {
			i := max(slices.IndexFunc(msgs, func(m []byte) bool { return uint64(len(m)) > q.r.MaxMessage() }), 0)
			err = q.tooLarge(len(msgs[i]), fmt.Sprintf("message %d of the batch", total+i))
		}
		total += n
		msgs = msgs[n:]
		if err != nil {
			break
		}
	}
	if total > 0 && (q.syncPut || q.syncer != nil) {
		err = errors.Join(err, q.afterPut())
	}
	return total, err
}

// GetBatch resets b and fills it with at least one and at most limit messages
// (limit <= 0 means no limit), waiting while the queue is empty. After the
// first message it stops rather than grow the batch's buffer beyond its
// capacity or 64 KiB, whichever is larger. It returns io.EOF once the queue
// is sealed and drained, or ctx.Err().
func (q *Queue) GetBatch(ctx context.Context, b *Batch, limit int) error {
	if ctx == nil {
		return ErrNilContext
	}
	if b == nil {
		return fmt.Errorf("%w: nil Batch", ErrInvalidOptions)
	}
	if limit <= 0 {
		limit = 1 << 30
	}
	b.Reset()
	bytes := max(cap(b.buf), minBatchBytes)
	out, n, err := q.r.GetBatch(b.buf, &b.ends, limit, bytes, ring.Try)
	b.buf = out
	if n > 0 {
		return nil
	}
	if !again(err) {
		return err
	}
	// Wait for the first message, then take whatever else is there.
	out, err = q.getSlow(ctx, b.buf)
	if err != nil {
		return err // b.buf keeps its buffer for the next call
	}
	b.buf = out
	b.ends = append(b.ends, len(b.buf))
	if limit > 1 {
		b.buf, _, _ = q.r.GetBatch(b.buf, &b.ends, limit-1, bytes, ring.Try)
	}
	return nil
}

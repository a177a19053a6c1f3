package natsq

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// deadLettered reports whether h was past its last delivery and went to
// the dead-letter queue (or was dropped) instead of being handed out.
func (q *Queue) deadLettered(h held) bool {
	if q.opts.MaxDeliveries <= 0 {
		return false
	}
	md, err := h.m.Metadata()
	if err != nil || md.NumDelivered <= uint64(q.opts.MaxDeliveries) {
		return false
	}
	_ = q.deadLetter(h.m)
	return true
}

// deadLetterRetry is how long a message the dead-letter queue did not take
// waits before it comes back to be dead-lettered again.
const deadLetterRetry = 100 * time.Millisecond

// deadLetter moves m to the dead-letter queue, or drops it if the queue has
// none. If the dead-letter queue does not take it (full, unreachable), m is
// given back to be tried again after deadLetterRetry, and deadLetter
// returns nil: the message is not lost, only late. An error means m could
// not be given back either (it comes back after its lease).
func (q *Queue) deadLetter(m jetstream.Msg) error {
	if q.opts.DeadLetter != "" {
		dlq, err := q.deadLetterQueue()
		if err == nil {
			ctx, cancel := q.timeout()
			err = dlq.put(ctx, m.Data())
			cancel()
		}
		if err != nil {
			if nerr := m.NakWithDelay(deadLetterRetry); nerr != nil {
				return fmt.Errorf("natsq: dead-letter to %s: %w; give back: %v", q.opts.DeadLetter, err, nerr)
			}
			return nil
		}
	}
	return m.Term()
}

// deadLetterQueue opens the dead-letter queue on the handle's connection,
// once it works.
func (q *Queue) deadLetterQueue() (*Queue, error) {
	q.dlqMu.Lock()
	defer q.dlqMu.Unlock()
	if q.dlq != nil {
		return q.dlq, nil
	}
	if q.closed.Load() {
		return nil, mpq.ErrClosed
	}
	ctx, cancel := q.timeout()
	defer cancel()
	dlq, err := open(ctx, q.nc, false, q.opts.DeadLetter, nil)
	if err != nil {
		return nil, err
	}
	q.dlq = dlq
	return dlq, nil
}

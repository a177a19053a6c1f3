package natsq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// nextWait is nextHeld once no fetched message is left: it fetches, and
// (if wait) waits, until a message comes, the queue is drained (io.EOF),
// or ctx is done; without wait, mpq.ErrEmpty when none is there.
func (q *Queue) nextWait(ctx context.Context, wait bool, batch int) (held, error) {
	for lag := 0; ; {
		if h, ok := q.pop(); ok {
			if q.deadLettered(h) {
				continue
			}
			return h, nil
		}
		if err := ctx.Err(); err != nil {
			return held{}, err
		}
		got, err := q.fetch(ctx, wait, batch)
		if err != nil {
			if errors.Is(err, nats.ErrNoResponders) {
				// Nobody takes pull requests: the consumer may be gone.
				if _, ierr := q.cons.Info(ctx); ierr != nil && !transient(ierr) {
					return held{}, q.consumerErr(ierr)
				}
			}
			if wait && transient(err) && ctx.Err() == nil {
				if err := sleep(ctx, q.opts.Poll); err != nil {
					return held{}, err
				}
				continue
			}
			return held{}, err
		}
		if got > 0 {
			continue
		}
		if done, err := q.drained(ctx); err != nil {
			if !wait || !transient(err) {
				return held{}, err
			}
		} else if done {
			return held{}, io.EOF
		}
		if !wait {
			// The server counts a new message as pending a little after
			// its Put returns, and answers a no-wait request "no
			// messages" meanwhile: ask again, a few times, while the
			// stream holds messages never delivered.
			if lag < 5 && q.undelivered(ctx) {
				lag++
				if err := sleep(ctx, time.Duration(lag)*time.Millisecond); err != nil {
					return held{}, err
				}
				continue
			}
			return held{}, mpq.ErrEmpty
		}
		if q.sealed.Load() {
			// Sealed but a delivery is out: wait for its ack or its lease.
			if err := sleep(ctx, q.opts.Poll); err != nil {
				return held{}, err
			}
		}
	}
}

// pop takes the oldest fetched message still well within its lease. One
// that waited in the handle for most of its lease is given back instead.
func (q *Queue) pop() (held, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	for len(q.buf) > 0 {
		h := q.buf[0]
		q.buf[0] = held{}
		q.buf = q.buf[1:]
		if h.deadline.Sub(now) < q.opts.AckWait/4 {
			_ = h.m.Nak()
			continue
		}
		return h, true
	}
	return held{}, false
}

// fetch asks the server for up to batch messages, waiting up to Poll for
// the first if wait, and keeps them in the handle. It returns how many
// came.
func (q *Queue) fetch(ctx context.Context, wait bool, batch int) (int, error) {
	// What is there now, up to Prefetch, at once; then, to wait, for one
	// message only: a pull request for more would wait for them all (or
	// for its expiry), not hand out the first as it comes.
	// (A sealed queue gets no new messages: the caller sees whether it is
	// done, rather than wait here first.)
	n, err := q.fetchBatch(ctx, min(batch, q.opts.Prefetch), false)
	if n > 0 || err != nil || !wait || q.sealed.Load() {
		return n, err
	}
	return q.fetchBatch(ctx, 1, true)
}

// fetchBatch makes one pull request for up to size messages, waiting up to
// Poll for them if wait, and keeps what comes in the handle with the end of
// its lease. It returns how many came.
func (q *Queue) fetchBatch(ctx context.Context, size int, wait bool) (int, error) {
	start := time.Now()
	var (
		batch jetstream.MessageBatch
		err   error
	)
	if wait {
		// Not the caller's context: nats.go drops the messages that reach
		// a pull request whose context ended, and the server counts them
		// delivered, so they would wait out their lease unseen. A request
		// that expires by itself keeps them here, for this handle's next
		// call or for Close to give back.
		d := q.opts.Poll
		if dl, ok := ctx.Deadline(); ok {
			d = min(d, time.Until(dl))
		}
		if d < time.Millisecond {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		batch, err = q.cons.Fetch(size, jetstream.FetchMaxWait(d))
	} else {
		batch, err = q.cons.FetchNoWait(size)
	}
	if err != nil {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			// ctx's deadline passed on the way (Fetch refuses a context
			// past its deadline): its timer fires at once.
			<-ctx.Done()
			return 0, ctx.Err()
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, q.consumerErr(err)
	}
	deadline := start.Add(q.opts.AckWait)
	n := 0
	for m := range batch.Messages() {
		q.mu.Lock()
		q.buf = append(q.buf, held{m: m, deadline: deadline})
		q.mu.Unlock()
		n++
	}
	if n == 0 && ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err := batch.Error(); err != nil && n == 0 && !errors.Is(err, nats.ErrTimeout) &&
		!errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, q.consumerErr(err)
	}
	return n, nil
}

// consumerErr wraps an error from the consumer: one wrapping fs.ErrNotExist
// if the stream or the consumer is gone.
func (q *Queue) consumerErr(err error) error {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("natsq: queue %s was deleted: %w (%v)", q.name, fs.ErrNotExist, err)
	}
	return fmt.Errorf("natsq: fetch from %s: %w", q.name, err)
}

// undelivered reports whether the stream holds messages the consumer has not
// delivered yet: in a work queue, every message past the last delivered.
func (q *Queue) undelivered(ctx context.Context) bool {
	si, err := q.stream.Info(ctx)
	if err != nil || si.State.Msgs == 0 {
		return false
	}
	ci, err := q.cons.Info(ctx)
	return err == nil && ci.Delivered.Stream < si.State.LastSeq
}

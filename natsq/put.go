package natsq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// Put publishes msg, waiting while the queue is full. It returns
// mpq.ErrSealed after Seal, mpq.ErrTooLarge for a message over the
// stream's MaxMsgSize, or ctx.Err().
func (q *Queue) Put(ctx context.Context, msg []byte) error {
	if ctx == nil {
		return mpq.ErrNilContext
	}
	if !q.enter() {
		return mpq.ErrClosed
	}
	defer q.leave()
	// The first try runs on ctx itself: binding ctx to Close costs more CPU
	// than the rest of Put on this side, and only a Put that waits needs
	// Close to wake it.
	err := q.put(ctx, msg)
	if !errors.Is(err, mpq.ErrFull) && !transient(err) {
		return err
	}
	ctx, done := q.bind(ctx)
	return done(q.putWait(ctx, msg, err))
}

// putWait publishes msg, after a first try that failed with err.
func (q *Queue) putWait(ctx context.Context, msg []byte, err error) error {
	wait := time.Millisecond
	for first := true; ; first = false {
		if !first {
			err = q.put(ctx, msg)
		}
		if !errors.Is(err, mpq.ErrFull) && !transient(err) {
			return err
		}
		if serr := sleep(ctx, wait); serr != nil {
			if errors.Is(err, mpq.ErrFull) {
				return serr
			}
			// Say why it waited: not a full queue, an unreachable server.
			return fmt.Errorf("%w (natsq: put on %s: still failing: %v)", serr, q.name, err)
		}
		wait = min(wait*2, q.opts.Poll)
	}
}

// TryPut publishes msg, or returns mpq.ErrFull if the queue has no room.
func (q *Queue) TryPut(msg []byte) error {
	if !q.enter() {
		return mpq.ErrClosed
	}
	defer q.leave()
	ctx, cancel := q.timeout()
	defer cancel()
	return q.put(ctx, msg)
}

// put makes one try at publishing msg: mpq.ErrTooLarge for a message over
// the limit, mpq.ErrFull if the stream has no room, mpq.ErrSealed if it is
// sealed.
func (q *Queue) put(ctx context.Context, msg []byte) error {
	if q.maxMsg >= 0 && len(msg) > q.maxMsg {
		return fmt.Errorf("%w: message of %d bytes, the most queue %s takes is %d (the lesser of the stream's MaxMsgSize, set from Options.MaxMessage when the queue was created, and the server's max_payload)",
			mpq.ErrTooLarge, len(msg), q.name, q.maxMsg)
	}
	if q.sealed.Load() {
		return mpq.ErrSealed
	}
	_, err := q.js.Publish(ctx, Subject(q.name), msg)
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (strings.Contains(apiErr.Description, "maximum messages exceeded") ||
		strings.Contains(apiErr.Description, "maximum bytes exceeded")):
		return mpq.ErrFull
	case errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum), errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: %d bytes: %v", mpq.ErrTooLarge, len(msg), err)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		// Nobody takes the subject: sealed, or the stream is gone.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if sealed, serr := q.checkSealed(ctx); serr == nil && sealed {
			return mpq.ErrSealed
		} else if errors.Is(serr, fs.ErrNotExist) {
			return serr
		}
		return fmt.Errorf("natsq: put on %s: %w", q.name, err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("natsq: put on %s: %w", q.name, err)
}

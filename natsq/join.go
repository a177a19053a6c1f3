package natsq

import (
	"context"
	"fmt"

	"github.com/mpq-go/mpq"
)

// Join waits until every message in the queue has been taken by Get or
// acknowledged (the stream is empty), asking the server every Poll. It
// returns ctx.Err() if ctx is done first.
func (q *Queue) Join(ctx context.Context) error {
	if ctx == nil {
		return mpq.ErrNilContext
	}
	if !q.enter() {
		return mpq.ErrClosed
	}
	defer q.leave()
	ctx, done := q.bind(ctx)
	return done(q.join(ctx))
}

// join asks the server every Poll until the stream is empty, riding out
// transient errors.
func (q *Queue) join(ctx context.Context) error {
	for {
		info, err := q.stream.Info(ctx)
		if err == nil && info.State.Msgs == 0 {
			return nil
		}
		if err != nil && !transient(err) {
			return fmt.Errorf("natsq: join %s: %w", q.name, err)
		}
		if err := sleep(ctx, q.opts.Poll); err != nil {
			return err
		}
	}
}

package mpq

import (
	"context"

	"github.com/mpq-go/mpq/internal/ring"
)

// Get removes the oldest message from the queue and returns it, waiting
// while the queue is empty. Once the queue is sealed and empty it returns
// io.EOF; if ctx is done first, ctx.Err().
func (q *Queue) Get(ctx context.Context) ([]byte, error) {
	b, err := q.AppendGet(ctx, nil)
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// TryGet is Get without waiting: it returns ErrEmpty if no message is
// waiting now (or another process is in the middle of taking one).
func (q *Queue) TryGet() ([]byte, error) {
	b, err := q.TryAppendGet(nil)
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// AppendGet is Get appending the message to dst and returning the extended
// slice: with a dst of enough capacity it allocates nothing.
func (q *Queue) AppendGet(ctx context.Context, dst []byte) ([]byte, error) {
	if ctx == nil {
		return dst, ErrNilContext
	}
	out, err := q.r.Get(dst, ring.Try)
	if !again(err) {
		return out, err
	}
	return q.getSlow(ctx, dst)
}

func (q *Queue) getSlow(ctx context.Context, dst []byte) ([]byte, error) {
	out := dst // returned as it was if the wait ends before a message
	err := q.block(ctx, forData, q.r.HasData, func(done <-chan struct{}) error {
		var err error
		out, err = q.r.Get(dst, ring.Block(done))
		return err
	})
	return out, err
}

// TryAppendGet is TryGet appending the message to dst.
func (q *Queue) TryAppendGet(dst []byte) ([]byte, error) {
	out, err := q.r.Get(dst, ring.Try)
	if err == ring.ErrBusy {
		err = ErrEmpty
	}
	return out, err
}

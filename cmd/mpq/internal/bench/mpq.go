//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mpq-go/mpq"
)

// batchSize is how many messages the batch path moves per PutBatch and at
// most per GetBatch.
const batchSize = 64

// mpqTransport links two processes with two anonymous queues, one per
// direction, with default options. With batch set, producers use PutBatch
// and consumers GetBatch; otherwise Put and AppendGet into a reused buffer.
// With ack set, producers Put and consumers Receive then Ack each message
// (acknowledgement mode).
type mpqTransport struct{ batch, ack bool }

// link makes a queue from side a to side b and one back, duplex or not,
// and keeps only their files: the queues live as long as some process
// holds them.
func (t mpqTransport) link(bool) (*link, error) {
	var files []*os.File
	for range 2 {
		q, err := mpq.New(nil)
		if err != nil {
			closeAll(files)
			return nil, err
		}
		f, err := q.File()
		if err == nil {
			files = append(files, f)
		}
		if err := errors.Join(err, q.Close()); err != nil {
			closeAll(files)
			return nil, err
		}
	}
	ab, ba := files[0], files[1]
	return &link{a: []*os.File{ba, ab}, b: []*os.File{ab, ba}, files: files}, nil
}

// spinEnv, if set, is the Options.Spin of every mpq handle the harness and
// its children open (see the -spin flag).
const spinEnv = "MPQ_BENCH_SPIN"

// options returns the Options of the handles: the default, or Spin from spinEnv.
func options() (*mpq.Options, error) {
	v := os.Getenv(spinEnv)
	if v == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spinEnv, err)
	}
	return &mpq.Options{Spin: d}, nil
}

// mpqConfig describes the queues for the table.
func mpqConfig() string {
	spin := "default Spin (50 µs)"
	if v := os.Getenv(spinEnv); v != "" {
		spin = "Spin " + v
	}
	return "mpq: anonymous queues (mpq.New: 4 MiB ring), handed to children by descriptor, opened with " + spin
}

// open opens files[0] to read from and files[1] to write to.
func (t mpqTransport) open(files []*os.File) (*ends, error) {
	if len(files) != 2 {
		return nil, fmt.Errorf("mpq side has %d files; want 2", len(files))
	}
	opts, err := options()
	if err != nil {
		return nil, err
	}
	in, err := mpq.OpenFile(files[0], opts)
	if err != nil {
		return nil, err
	}
	out, err := mpq.OpenFile(files[1], opts)
	if err != nil {
		in.Close()
		return nil, err
	}
	e := &ends{
		in:  &mpqEnd{q: in, batch: t.batch, ack: t.ack},
		out: &mpqEnd{q: out, batch: t.batch, ack: t.ack},
		close: func() error {
			return errors.Join(in.Close(), out.Close())
		},
	}
	return e, nil
}

// mpqEnd is a queue handle used one way. Its get takes one message with
// AppendGet, a batch with GetBatch, or with ack one message with Receive,
// acknowledged at once.
type mpqEnd struct {
	q     *mpq.Queue
	batch bool
	ack   bool
	buf   []byte    // AppendGet destination, reused
	b     mpq.Batch // GetBatch destination, reused
	msgs  [][]byte  // PutBatch argument, reused
}

func (e *mpqEnd) put(ctx context.Context, msg []byte, n int) error {
	if !e.batch {
		for range n {
			if err := e.q.Put(ctx, msg); err != nil {
				return err
			}
		}
		return nil
	}
	for n > 0 {
		k := min(n, batchSize)
		e.msgs = e.msgs[:0]
		for range k {
			e.msgs = append(e.msgs, msg)
		}
		if _, err := e.q.PutBatch(ctx, e.msgs); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (e *mpqEnd) get(ctx context.Context) (int, int, error) {
	if e.ack {
		d, err := e.q.Receive(ctx)
		if err != nil {
			return 0, 0, err
		}
		n := len(d.Data())
		if err := d.Ack(); err != nil {
			return 0, 0, err
		}
		return 1, n, nil
	}
	if !e.batch {
		var err error
		e.buf, err = e.q.AppendGet(ctx, e.buf[:0])
		if err != nil {
			return 0, 0, err
		}
		return 1, len(e.buf), nil
	}
	if err := e.q.GetBatch(ctx, &e.b, batchSize); err != nil {
		return 0, 0, err
	}
	bytes := 0
	for i := range e.b.Len() {
		bytes += len(e.b.Message(i))
	}
	return e.b.Len(), bytes, nil
}

func (e *mpqEnd) closeWrite() error { return e.q.Seal() }

// sleeps returns how many times a Put or Get of any process slept on the
// queue since it was created.
func (e *mpqEnd) sleeps() uint64 { return e.q.Stats().Waits }

// closeAll closes files, skipping nil entries and ignoring errors: it
// cleans up after a failure.
func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

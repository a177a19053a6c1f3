package natsq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// ConsumerName is the name of the durable pull consumer every handle of a
// queue shares.
const ConsumerName = "mpq"

// A Queue is a handle on a queue in NATS JetStream. All its methods are safe
// for concurrent use by multiple goroutines.
type Queue struct {
	name    string
	opts    Options
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	stream  jetstream.Stream
	cons    jetstream.Consumer
	maxMsg  int // the stream's MaxMsgSize, or -1

	mu  sync.Mutex
	buf []held // fetched, not yet handed out, oldest first

	sealed atomic.Bool
	closed atomic.Bool
	life   context.Context // done once Close begins: wakes blocked calls
	end    context.CancelFunc
	callMu sync.Mutex
	calls  int        // calls in progress, waited for by Close
	idle   *sync.Cond // signalled when calls drops to 0 after Close

	dlqMu sync.Mutex
	dlq   *Queue // opened when first needed
}

// held is a fetched message waiting in the handle.
type held struct {
	m        jetstream.Msg
	deadline time.Time // the end of its lease, from when it was asked for
}

var _ mpq.MessageQueue = (*Queue)(nil)

// Open opens the queue name on the NATS server nc is connected to,
// creating its stream and consumer if needed (unless opts.NoCreate). The
// handle does not close nc.
func Open(ctx context.Context, nc *nats.Conn, name string, opts *Options) (*Queue, error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	return open(ctx, nc, false, name, opts)
}

// Dial connects to the NATS server at url (such as nats://127.0.0.1:4222)
// and opens the queue name there; Close closes the connection. The
// connection reconnects by itself when the server restarts.
func Dial(ctx context.Context, url, name string, opts *Options) (*Queue, error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	if err := validName(name); err != nil {
		return nil, err
	}
	nc, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	q, err := open(ctx, nc, true, name, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return q, nil
}

// connect dials the NATS server at url, reconnecting forever and without a
// reconnect buffer.
func connect(ctx context.Context, url string) (*nats.Conn, error) {
	// No reconnect buffer: a publish while the connection is down fails at
	// once (and Put tries again) rather than waiting in the buffer to reach
	// the server after a Put that failed, or as a duplicate of a Put that
	// tried again.
	o := []nats.Option{nats.Name("mpq"), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectBufSize(-1)}
	if dl, ok := ctx.Deadline(); ok {
		o = append(o, nats.Timeout(time.Until(dl)))
	}
	nc, err := nats.Connect(url, o...)
	if err != nil {
		return nil, fmt.Errorf("natsq: connect to %s: %w", mpq.RedactURL(url), err)
	}
	return nc, nil
}

// open makes a handle on the queue name over nc, which it closes on Close
// if own.
func open(ctx context.Context, nc *nats.Conn, own bool, name string, o *Options) (*Queue, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsq: %w", err)
	}
	q := &Queue{name: name, opts: opts, nc: nc, ownConn: own, js: js}
	q.life, q.end = context.WithCancel(context.Background())
	q.idle = sync.NewCond(&q.callMu)
	if err := q.attach(ctx); err != nil {
		return nil, err
	}
	return q, nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// String describes the queue for logs.
func (q *Queue) String() string { return fmt.Sprintf("natsq.Queue(%s)", q.name) }

// enter registers a call; it reports false once the handle is closed. (A
// counter under a mutex, not a WaitGroup: a call may begin while Close
// waits, which a WaitGroup does not allow.)
func (q *Queue) enter() bool {
	q.callMu.Lock()
	defer q.callMu.Unlock()
	if q.closed.Load() {
		return false
	}
	q.calls++
	return true
}

// leave ends a call enter registered, waking Close when it was the last.
func (q *Queue) leave() {
	q.callMu.Lock()
	defer q.callMu.Unlock()
	q.calls--
	if q.calls == 0 && q.closed.Load() {
		q.idle.Broadcast()
	}
}

// bind returns a context done when ctx is or when Close begins; done maps
// the error of a call under it back: mpq.ErrClosed if the handle closed.
func (q *Queue) bind(ctx context.Context) (context.Context, func(error) error) {
	bctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(q.life, cancel)
	return bctx, func(err error) error {
		stop()
		cancel()
		if err != nil && q.closed.Load() && ctx.Err() == nil {
			return mpq.ErrClosed
		}
		return err
	}
}

// timeout is the context of a call that takes none: it ends after
// Options.Timeout.
func (q *Queue) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), q.opts.Timeout)
}

// transient reports whether err may go away by itself: the connection is
// reconnecting, or a request timed out.
func transient(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, context.DeadlineExceeded)
}

// sleep waits d, or returns ctx.Err() if ctx is done first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Close gives back the messages this handle fetched and did not hand out,
// flushes its acknowledgements to the server, and closes the connection if
// Dial opened it. Deliveries from Receive not yet acknowledged are
// delivered again after their lease. Close is idempotent: later calls
// return mpq.ErrClosed, as on shared memory.
func (q *Queue) Close() error {
	q.callMu.Lock()
	already := q.closed.Swap(true)
	q.callMu.Unlock()
	if already {
		return mpq.ErrClosed
	}
	q.end()
	q.callMu.Lock()
	for q.calls > 0 {
		q.idle.Wait()
	}
	q.callMu.Unlock()
	q.mu.Lock()
	for _, h := range q.buf {
		_ = h.m.Nak()
	}
	q.buf = nil
	q.mu.Unlock()
	q.dlqMu.Lock()
	if q.dlq != nil {
		_ = q.dlq.Close()
	}
	q.dlqMu.Unlock()
	err := q.nc.FlushTimeout(q.opts.Timeout)
	if q.ownConn {
		q.nc.Close()
	}
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("natsq: close %s: %w", q.name, err)
	}
	return nil
}

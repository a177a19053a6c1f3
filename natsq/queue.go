package natsq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
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

// sealedKey is the stream metadata key that records a Seal.
const sealedKey = "mpq-sealed"

// Options configure how a queue is opened or created. A nil *Options means
// all defaults. MaxMsgs, MaxBytes, MaxMessageSize, Memory, Replicas,
// AckWait, MaxDeliveries and DeadLetter apply only when the queue's stream
// and consumer are created: an existing queue keeps its own (MaxDeliveries
// and DeadLetter are recorded in the consumer's metadata). The others apply
// to the handle.
type Options struct {
	// MaxMsgs bounds how many messages the queue holds; Put waits and
	// TryPut returns mpq.ErrFull beyond it. Default: no bound on the count.
	MaxMsgs int64
	// MaxBytes bounds the bytes the queue holds (JetStream counts each
	// message's subject and headers too). Default 64 MiB.
	MaxBytes int64
	// MaxMessageSize is the largest message Put accepts; a larger one gets
	// mpq.ErrTooLarge. Default 1 MiB, the server's default max_payload.
	MaxMessageSize int32
	// Memory keeps the stream in the server's memory instead of files. A
	// restart of the server loses it. Default false: file storage.
	Memory bool
	// Replicas is the stream's number of replicas in a cluster. Default 1.
	Replicas int
	// AckWait is the lease of a delivery: how long a received message stays
	// with its consumer before it is delivered again. Default 30s.
	AckWait time.Duration
	// MaxDeliveries, if positive, is how many deliveries a message gets;
	// given back once more (or its lease ending), it goes to DeadLetter, or
	// is dropped if there is none. Default 0: no limit.
	MaxDeliveries int
	// DeadLetter names a queue on the same server that takes the messages
	// MaxDeliveries gives up on. It is opened, with default options, when
	// first needed. A message it does not take (full, unreachable) is tried
	// again 100ms later.
	DeadLetter string
	// NoCreate makes Open fail, with an error wrapping fs.ErrNotExist,
	// if the queue's stream does not exist.
	NoCreate bool
	// Prefetch is how many messages a Get asks the server for at once; the
	// handle keeps the rest for its next calls. Default 64. Receive asks
	// for one at a time, so that work spreads over the consumers and each
	// lease starts as its message is handed out. A
	// queue with MaxDeliveries fetches one at a time whatever this says,
	// since JetStream counts every message fetched as a delivery.
	Prefetch int
	// Poll is how often a blocked call asks the server again. Default 250ms.
	Poll time.Duration
	// Timeout bounds each request to the server by calls without a
	// context (TryPut, TryGet, TryReceive, Len, Seal, Close). Default 5s.
	Timeout time.Duration
}

const (
	defaultMaxBytes       = 64 << 20
	defaultMaxMessageSize = 1 << 20
	defaultAckWait        = 30 * time.Second
	defaultPrefetch       = 64
	defaultPoll           = 250 * time.Millisecond
	defaultTimeout        = 5 * time.Second
)

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	switch {
	case r.MaxMsgs < 0, r.MaxBytes < 0, r.MaxMessageSize < 0, r.Replicas < 0, r.AckWait < 0,
		r.MaxDeliveries < 0, r.Prefetch < 0, r.Poll < 0, r.Timeout < 0:
		return r, fmt.Errorf("%w: negative value in %+v", mpq.ErrInvalidOptions, r)
	case r.AckWait > 0 && r.AckWait < time.Millisecond:
		return r, fmt.Errorf("%w: AckWait %v is below JetStream's 1ms", mpq.ErrInvalidOptions, r.AckWait)
	case r.AckWait > mpq.MaxLease:
		return r, fmt.Errorf("%w: AckWait %v over mpq.MaxLease %v", mpq.ErrInvalidOptions, r.AckWait, mpq.MaxLease)
	case r.Prefetch > 10000:
		return r, fmt.Errorf("%w: Prefetch %d is above 10000", mpq.ErrInvalidOptions, r.Prefetch)
	}
	if r.DeadLetter != "" {
		if err := validName(r.DeadLetter); err != nil {
			return r, fmt.Errorf("%w: DeadLetter: %v", mpq.ErrInvalidOptions, err)
		}
	}
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&r.MaxBytes, defaultMaxBytes)
	if r.MaxMessageSize == 0 {
		r.MaxMessageSize = defaultMaxMessageSize
	}
	if r.Replicas == 0 {
		r.Replicas = 1
	}
	if r.AckWait == 0 {
		r.AckWait = defaultAckWait
	}
	if r.Prefetch == 0 {
		r.Prefetch = defaultPrefetch
	}
	if r.Poll == 0 {
		r.Poll = defaultPoll
	}
	if r.Timeout == 0 {
		r.Timeout = defaultTimeout
	}
	return r, nil
}

// validName checks a queue name: it is a stream name and part of a subject,
// so 1 to 200 of A-Z a-z 0-9 _ -.
func validName(name string) error {
	if name == "" || len(name) > 200 {
		return fmt.Errorf("%w: %q: want 1 to 200 characters", mpq.ErrInvalidName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: a NATS queue name has only letters, digits, '_' and '-'", mpq.ErrInvalidName, name)
		}
	}
	return nil
}

// Subject is the subject a queue's messages are published on.
func Subject(name string) string { return "mpq." + name }

// sealedSubject is where a sealed stream listens: nobody publishes there.
func sealedSubject(name string) string { return "mpq." + name + ".sealed" }

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

// attach finds or creates the stream and the consumer.
func (q *Queue) attach(ctx context.Context) error {
	st, err := q.js.Stream(ctx, q.name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if q.opts.NoCreate {
			return fmt.Errorf("natsq: queue %s: %w", q.name, fs.ErrNotExist)
		}
		st, err = q.js.CreateStream(ctx, q.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = q.js.Stream(ctx, q.name) // another process created it first
		}
	}
	if err != nil {
		return fmt.Errorf("natsq: queue %s: %w", q.name, err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Retention != jetstream.WorkQueuePolicy {
		return fmt.Errorf("%w: stream %s has %v retention, not a work queue", mpq.ErrIncompatible, q.name, cfg.Retention)
	}
	q.stream = st
	// The largest message is the stream's limit or the server's
	// max_payload, whichever is smaller.
	q.maxMsg = int(q.nc.MaxPayload())
	if cfg.MaxMsgSize > 0 && (q.maxMsg <= 0 || int(cfg.MaxMsgSize) < q.maxMsg) {
		q.maxMsg = int(cfg.MaxMsgSize)
	}
	if q.maxMsg <= 0 {
		q.maxMsg = -1
	}
	q.sealed.Store(cfg.Metadata[sealedKey] == "true")

	c, err := st.Consumer(ctx, ConsumerName)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if q.opts.NoCreate {
			return fmt.Errorf("natsq: queue %s has no consumer %q: %w", q.name, ConsumerName, fs.ErrNotExist)
		}
		c, err = st.CreateConsumer(ctx, q.consumerConfig())
		if errors.Is(err, jetstream.ErrConsumerExists) {
			c, err = st.Consumer(ctx, ConsumerName)
		}
	}
	if errors.Is(err, jetstream.ErrNotPullConsumer) {
		return fmt.Errorf("%w: consumer %s of %s is a push consumer", mpq.ErrIncompatible, ConsumerName, q.name)
	}
	if err != nil {
		return fmt.Errorf("natsq: queue %s: consumer: %w", q.name, err)
	}
	cc := c.CachedInfo().Config
	if cc.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("%w: consumer %s of %s does not ack explicitly", mpq.ErrIncompatible, ConsumerName, q.name)
	}
	q.cons = c
	q.opts.AckWait = cc.AckWait
	q.opts.MaxDeliveries, q.opts.DeadLetter = recorded(cc)
	if q.opts.MaxDeliveries > 0 {
		// JetStream counts a delivery per message fetched: messages
		// prefetched and given back unseen by Close would use up their
		// deliveries and be dead-lettered without ever being handed out.
		q.opts.Prefetch = 1
	}
	return nil
}

func (q *Queue) streamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if q.opts.Memory {
		storage = jetstream.MemoryStorage
	}
	maxMsgs := q.opts.MaxMsgs
	if maxMsgs == 0 {
		maxMsgs = -1
	}
	return jetstream.StreamConfig{
		Name:        q.name,
		Description: "mpq queue " + q.name,
		Subjects:    []string{Subject(q.name)},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     maxMsgs,
		MaxBytes:    q.opts.MaxBytes,
		MaxMsgSize:  q.opts.MaxMessageSize,
		Storage:     storage,
		Replicas:    q.opts.Replicas,
	}
}

// Consumer metadata keys recording Options.MaxDeliveries and DeadLetter.
const (
	maxDeliveriesKey = "mpq-max-deliveries"
	deadLetterKey    = "mpq-dead-letter"
)

// recorded returns the MaxDeliveries and DeadLetter a consumer records.
func recorded(cc jetstream.ConsumerConfig) (int, string) {
	n, err := strconv.Atoi(cc.Metadata[maxDeliveriesKey])
	if err != nil || n < 0 {
		n = 0
	}
	dl := cc.Metadata[deadLetterKey]
	if validName(dl) != nil {
		dl = ""
	}
	return n, dl
}

// consumerConfig: the server's MaxDeliver has no limit, and the handles
// count deliveries: a message past its last delivery reaches a handle,
// which dead-letters it, or gives it back for a later try if the
// dead-letter queue does not take it. With MaxDeliver set, the server
// would stop delivering such a message, which would then stay in the
// stream for good.
func (q *Queue) consumerConfig() jetstream.ConsumerConfig {
	md := map[string]string{}
	if q.opts.MaxDeliveries > 0 {
		md[maxDeliveriesKey] = strconv.Itoa(q.opts.MaxDeliveries)
	}
	if q.opts.DeadLetter != "" {
		md[deadLetterKey] = q.opts.DeadLetter
	}
	return jetstream.ConsumerConfig{
		Metadata:      md,
		Durable:       ConsumerName,
		Description:   "shared by every consumer of mpq queue " + q.name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.opts.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		MaxWaiting:    4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
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

func (q *Queue) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), q.opts.Timeout)
}

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

func (q *Queue) put(ctx context.Context, msg []byte) error {
	if q.maxMsg >= 0 && len(msg) > q.maxMsg {
		return fmt.Errorf("%w: message of %d bytes, the most queue %s takes is %d (the lesser of the stream's MaxMsgSize, set from Options.MaxMessageSize when the queue was created, and the server's max_payload)",
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

// checkSealed asks the server whether the queue is sealed.
func (q *Queue) checkSealed(ctx context.Context) (bool, error) {
	if q.sealed.Load() {
		return true, nil
	}
	info, err := q.stream.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, fmt.Errorf("natsq: queue %s was deleted: %w", q.name, fs.ErrNotExist)
	}
	if err != nil {
		return false, err
	}
	if info.Config.Metadata[sealedKey] == "true" {
		q.sealed.Store(true)
		return true, nil
	}
	return false, nil
}

// transient reports whether err may go away by itself: the connection is
// reconnecting, or a request timed out.
func transient(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, context.DeadlineExceeded)
}

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

func (q *Queue) consumerErr(err error) error {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("natsq: queue %s was deleted: %w (%v)", q.name, fs.ErrNotExist, err)
	}
	return fmt.Errorf("natsq: fetch from %s: %w", q.name, err)
}

// drained reports whether the queue is sealed and every message in it
// acknowledged.
func (q *Queue) drained(ctx context.Context) (bool, error) {
	sealed, err := q.checkSealed(ctx)
	if err != nil || !sealed {
		return false, err
	}
	info, err := q.cons.Info(ctx)
	if err != nil {
		return false, q.consumerErr(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0, nil
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

// Len returns the number of messages waiting to be delivered (the messages
// the consumer has not delivered yet, plus the ones this handle fetched and
// has not handed out: messages given back and waiting for another delivery,
// and those other handles fetched, are not counted), or -1 if the server
// cannot tell.
func (q *Queue) Len() int {
	if !q.enter() {
		return 0
	}
	defer q.leave()
	ctx, cancel := q.timeout()
	defer cancel()
	// Not the consumer's NumPending: the server counts new messages into it
	// a little after it acknowledges their Put, so that Len right after a
	// Put could miss them. Every message of the work queue's stream past the
	// last one delivered waits for its first delivery; the stream's last
	// sequence is exact once Put returns, and only Put moves it, as only a
	// delivery moves the consumer's.
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return -1
	}
	si, err := q.stream.Info(ctx)
	if err != nil {
		return -1
	}
	last := si.State.LastSeq
	waiting := min(last-min(ci.Delivered.Stream, last), si.State.Msgs)
	q.mu.Lock()
	n := len(q.buf) // fetched, so delivered for the server, but not handed out
	q.mu.Unlock()
	return int(waiting) + n
}

// Seal marks the queue as complete: every later Put, in any process, fails
// with mpq.ErrSealed, while consumers receive the messages in the queue and
// then io.EOF. Sealing is permanent and sealing twice is not an error.
func (q *Queue) Seal() error {
	if !q.enter() {
		return mpq.ErrClosed
	}
	defer q.leave()
	ctx, cancel := q.timeout()
	defer cancel()
	info, err := q.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("natsq: seal %s: %w", q.name, err)
	}
	cfg := info.Config
	if cfg.Metadata[sealedKey] == "true" {
		q.sealed.Store(true)
		return nil
	}
	md := map[string]string{}
	for k, v := range cfg.Metadata {
		md[k] = v
	}
	md[sealedKey] = "true"
	cfg.Metadata = md
	cfg.Subjects = []string{sealedSubject(q.name)}
	if _, err := q.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("natsq: seal %s: %w", q.name, err)
	}
	q.sealed.Store(true)
	return nil
}

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

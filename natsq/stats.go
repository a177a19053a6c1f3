package natsq

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// Stats is what the server says of a queue: its stream and its consumer.
type Stats struct {
	Name    string
	Subject string // where Put publishes; a sealed queue's stream no longer listens on it
	Sealed  bool
	Memory  bool // memory storage, not files

	Messages    uint64    // in the stream: waiting, held or given back (acknowledged ones leave)
	Bytes       uint64    // stored, as JetStream counts them
	Pending     uint64    // not yet delivered
	AckPending  int       // delivered (or fetched into a handle), not yet acknowledged
	Redelivered int       // delivered more than once, not yet acknowledged
	Waiting     int       // pull requests waiting at the server: blocked consumers
	Created     time.Time // of the stream

	MaxMsgs       int64 // -1: no bound
	MaxBytes      int64 // -1: no bound
	MaxMessage    int32
	AckWait       time.Duration
	MaxDeliveries int // 0: no limit
	Replicas      int
}

// Stats asks the server for the queue's stream and consumer.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	if ctx == nil {
		return Stats{}, mpq.ErrNilContext
	}
	if !q.enter() {
		return Stats{}, fmt.Errorf("natsq: stats of %s: %w", q.name, mpq.ErrClosed)
	}
	defer q.leave()
	si, err := q.stream.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("natsq: stats of %s: %w", q.name, err)
	}
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("natsq: stats of %s: %w", q.name, q.consumerErr(err))
	}
	c := si.Config
	st := Stats{
		Name:        q.name,
		Subject:     Subject(q.name),
		Sealed:      c.Metadata[sealedKey] == "true",
		Memory:      c.Storage == jetstream.MemoryStorage,
		Messages:    si.State.Msgs,
		Bytes:       si.State.Bytes,
		Pending:     ci.NumPending,
		AckPending:  ci.NumAckPending,
		Redelivered: ci.NumRedelivered,
		Waiting:     ci.NumWaiting,
		Created:     si.Created,
		MaxMsgs:     c.MaxMsgs,
		MaxBytes:    c.MaxBytes,
		MaxMessage:  c.MaxMsgSize,
		AckWait:     ci.Config.AckWait,
		Replicas:    c.Replicas,
	}
	st.MaxDeliveries, _ = recorded(ci.Config)
	if st.Sealed {
		q.sealed.Store(true)
	}
	return st, nil
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

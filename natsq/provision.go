package natsq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// Subject is the subject a queue's messages are published on.
func Subject(name string) string { return "mpq." + name }

// attach finds or creates the stream and the consumer.
func (q *Queue) attach(ctx context.Context) error {
	if err := q.attachStream(ctx); err != nil {
		return err
	}
	return q.attachConsumer(ctx)
}

// attachStream finds or creates the queue's stream, checks that it is a
// work queue, and takes the largest message and the seal from it.
func (q *Queue) attachStream(ctx context.Context) error {
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
	return nil
}

// attachConsumer finds or creates the queue's consumer, checks that it
// acknowledges explicitly, and takes the lease, MaxDeliveries and
// DeadLetter it records.
func (q *Queue) attachConsumer(ctx context.Context) error {
	st := q.stream
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

// streamConfig is the configuration of a new queue's stream, from the
// handle's Options.
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
		MaxMsgSize:  q.opts.MaxMessage,
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

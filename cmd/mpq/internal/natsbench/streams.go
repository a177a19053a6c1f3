package natsbench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq/natsq"
)

// The stream and consumer the baseline creates: natsq's, with its default
// Options, written out as a nats.go user would. checkSame makes sure they
// stay the same as what natsq creates.
func rawStreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{natsq.Subject(name)},
		Retention:  jetstream.WorkQueuePolicy,
		Discard:    jetstream.DiscardNew,
		MaxMsgs:    -1,
		MaxBytes:   64 << 20,
		MaxMsgSize: 1 << 20,
		Storage:    jetstream.FileStorage,
		Replicas:   1,
	}
}

func rawConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       natsq.ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		MaxWaiting:    4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// createRaw creates a baseline stream and its consumer on the admin
// connection.
func (b *bench) createRaw(ctx context.Context, name string) error {
	st, err := b.ajs.CreateStream(ctx, rawStreamConfig(name))
	if err != nil {
		return err
	}
	_, err = st.CreateConsumer(ctx, rawConsumerConfig())
	return err
}

// checkSame fails if natsq's stream or consumer name differ from the
// baseline's in anything that can change the speed.
func (b *bench) checkSame(ctx context.Context, name string) error {
	st, err := b.ajs.Stream(ctx, name)
	if err != nil {
		return err
	}
	c, err := st.Consumer(ctx, natsq.ConsumerName)
	if err != nil {
		return err
	}
	got, want := st.CachedInfo().Config, rawStreamConfig(name)
	type streamKey struct {
		Subjects                  string
		Retention                 jetstream.RetentionPolicy
		Discard                   jetstream.DiscardPolicy
		MaxMsgs, MaxBytes         int64
		MaxMsgSize                int32
		Storage                   jetstream.StorageType
		Replicas                  int
		Compression               jetstream.StoreCompression
		AllowDirect, NoAck        bool
		MaxMsgsPerSubject, MaxAge int64
	}
	sk := func(c jetstream.StreamConfig) streamKey {
		return streamKey{strings.Join(c.Subjects, ","), c.Retention, c.Discard, c.MaxMsgs, c.MaxBytes, c.MaxMsgSize,
			c.Storage, c.Replicas, c.Compression, c.AllowDirect, c.NoAck, c.MaxMsgsPerSubject, int64(c.MaxAge)}
	}
	if want.MaxMsgsPerSubject == 0 {
		want.MaxMsgsPerSubject = -1 // as the server fills it in
	}
	if sk(got) != sk(want) {
		return fmt.Errorf("natsq's stream %+v differs from the baseline's %+v", sk(got), sk(want))
	}
	cg, cw := c.CachedInfo().Config, rawConsumerConfig()
	type consumerKey struct {
		Durable                  string
		AckPolicy                jetstream.AckPolicy
		AckWait                  time.Duration
		MaxDeliver, MaxAckPend   int
		MaxWaiting               int
		DeliverPolicy            jetstream.DeliverPolicy
		MaxRequestBatch          int
		MaxRequestExpires        time.Duration
		FilterSubject            string
		HeadersOnly, MemoryStore bool
	}
	ck := func(c jetstream.ConsumerConfig) consumerKey {
		return consumerKey{c.Durable, c.AckPolicy, c.AckWait, c.MaxDeliver, c.MaxAckPending, c.MaxWaiting, c.DeliverPolicy,
			c.MaxRequestBatch, c.MaxRequestExpires, c.FilterSubject, c.HeadersOnly, c.MemoryStorage}
	}
	if ck(cg) != ck(cw) {
		return fmt.Errorf("natsq's consumer %+v differs from the baseline's %+v", ck(cg), ck(cw))
	}
	return nil
}

// fill puts n messages into the stream name, untimed, and checks that they
// are all there.
func (b *bench) fill(ctx context.Context, name string, n int) error {
	subj := natsq.Subject(name)
	for i := 0; i < n; i++ {
		if _, err := b.ajs.PublishAsync(subj, b.msg); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
	}
	select {
	case <-b.ajs.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return errors.New("fill: no acknowledgements after a minute")
	}
	got, err := b.count(ctx, name)
	if err == nil && got != uint64(n) {
		err = fmt.Errorf("fill: stream %s holds %d messages, want %d", name, got, n)
	}
	return err
}

// checkCount fails unless the stream holds n messages.
func (b *bench) checkCount(ctx context.Context, name string, n int) error {
	got, err := b.count(ctx, name)
	if err == nil && got != uint64(n) {
		err = fmt.Errorf("stream %s holds %d messages after the run, want %d", name, got, n)
	}
	return err
}

// count returns how many messages the stream name holds.
func (b *bench) count(ctx context.Context, name string) (uint64, error) {
	st, err := b.ajs.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.Msgs, nil
}

// checkDrained fails unless the consumer has every message acknowledged.
func (b *bench) checkDrained(ctx context.Context, name string) error {
	c, err := b.ajs.Consumer(ctx, name, natsq.ConsumerName)
	if err != nil {
		return err
	}
	// Acks are processed by the server asynchronously: give it a moment.
	for i := 0; ; i++ {
		ci, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 {
			return nil
		}
		if i == 50 {
			return fmt.Errorf("consumer of %s: %d pending, %d awaiting ack after the run", name, ci.NumPending, ci.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

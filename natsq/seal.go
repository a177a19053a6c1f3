package natsq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// sealedKey is the stream metadata key that records a Seal.
const sealedKey = "mpq-sealed"

// sealedSubject is where a sealed stream listens: nobody publishes there.
func sealedSubject(name string) string { return "mpq." + name + ".sealed" }

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

package natsq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
)

// Remove deletes the queue name from the server nc is connected to: its
// stream, its consumer and every message in them. Handles still open on it
// get errors wrapping fs.ErrNotExist. Removing a queue that does not exist
// returns an error wrapping fs.ErrNotExist.
func Remove(ctx context.Context, nc *nats.Conn, name string) error {
	if ctx == nil {
		return mpq.ErrNilContext
	}
	if err := validName(name); err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsq: %w", err)
	}
	err = js.DeleteStream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("natsq: remove %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("natsq: remove %s: %w", name, err)
	}
	return nil
}

// RemoveURL deletes the queue a nats:// URL names (see ParseURL), as
// Remove does.
func RemoveURL(ctx context.Context, rawURL string) error {
	if ctx == nil {
		return mpq.ErrNilContext
	}
	server, name, _, err := ParseURL(rawURL)
	if err != nil {
		return err
	}
	nc, err := connect(ctx, server)
	if err != nil {
		return err
	}
	defer nc.Close()
	return Remove(ctx, nc, name)
}

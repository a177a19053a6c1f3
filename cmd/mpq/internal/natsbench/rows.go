package natsbench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq/natsq"
)

// rate is n messages over d.
func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// split runs f on p goroutines, giving them n messages between them, and
// returns the first error.
func split(n, p int, f func(n int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, p)
	for i := 0; i < p; i++ {
		k := n / p
		if i < n%p {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(k)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// openRaw creates a fresh stream and consumer as a nats.go user would,
// fills it with fill messages (untimed), and connects to the server.
// release closes the connection and deletes the stream.
func (b *bench) openRaw(ctx context.Context, fill int) (nc *nats.Conn, js jetstream.JetStream, name string, release func(), err error) {
	name = b.newName()
	if err := b.createRaw(ctx, name); err != nil {
		return nil, nil, "", nil, err
	}
	if fill > 0 {
		if err := b.fill(ctx, name, fill); err != nil {
			b.deleteStream(name)
			return nil, nil, "", nil, err
		}
	}
	if nc, err = connect(b.cfg.URL); err == nil {
		if js, err = jetstream.New(nc); err != nil {
			nc.Close()
		}
	}
	if err != nil {
		b.deleteStream(name)
		return nil, nil, "", nil, err
	}
	return nc, js, name, func() { nc.Close(); b.deleteStream(name) }, nil
}

// rawPublish: p goroutines call jetstream's Publish, each waiting for its
// acknowledgement, on one connection.
func rawPublish(p int) runFunc {
	return func(ctx context.Context, b *bench, n int) (float64, error) {
		_, js, name, release, err := b.openRaw(ctx, 0)
		if err != nil {
			return 0, err
		}
		defer release()
		if _, err := js.Stream(ctx, name); err != nil { // as natsq.Open does
			return 0, err
		}
		subj := natsq.Subject(name)
		return b.timePublish(ctx, name, n, p, func() error {
			_, err := js.Publish(ctx, subj, b.msg)
			return err
		})
	}
}

// timePublish times p goroutines calling publish n times between them,
// and checks that the stream name then holds n messages.
func (b *bench) timePublish(ctx context.Context, name string, n, p int, publish func() error) (float64, error) {
	start := time.Now()
	err := split(n, p, func(k int) error {
		for i := 0; i < k; i++ {
			if err := publish(); err != nil {
				return err
			}
		}
		return nil
	})
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	return rate(n, d), b.checkCount(ctx, name, n)
}

// openNatsq opens a natsq Queue on a fresh stream, over a connection of its
// own, and checks that natsq made the stream and consumer the baseline
// makes. release closes both and deletes the stream.
func (b *bench) openNatsq(ctx context.Context) (q *natsq.Queue, nc *nats.Conn, name string, done func(), err error) {
	name = b.newName()
	nc, err = connect(b.cfg.URL)
	if err != nil {
		return nil, nil, "", nil, err
	}
	done = func() {
		if q != nil {
			q.Close()
		}
		nc.Close()
		b.deleteStream(name)
	}
	q, err = natsq.Open(ctx, nc, name, nil)
	if err == nil {
		err = b.checkSame(ctx, name)
	}
	if err != nil {
		done()
		return nil, nil, "", nil, err
	}
	return q, nc, name, done, nil
}

// natsqPublish: p goroutines call Put on one Queue.
func natsqPublish(p int) runFunc {
	return func(ctx context.Context, b *bench, n int) (float64, error) {
		q, _, name, release, err := b.openNatsq(ctx)
		if err != nil {
			return 0, err
		}
		defer release()
		return b.timePublish(ctx, name, n, p, func() error { return q.Put(ctx, b.msg) })
	}
}

// rawConsume: Fetch batches of 64 from the durable consumer and Ack each
// message, then Flush.
func rawConsume(ctx context.Context, b *bench, n int) (float64, error) {
	nc, js, name, release, err := b.openRaw(ctx, n)
	if err != nil {
		return 0, err
	}
	defer release()
	cons, err := js.Consumer(ctx, name, natsq.ConsumerName)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	got := 0
	for got < n {
		batch, err := cons.Fetch(fetchBatch)
		if err != nil {
			return 0, err
		}
		for m := range batch.Messages() {
			if len(m.Data()) != b.cfg.Size {
				return 0, fmt.Errorf("got %d bytes, want %d", len(m.Data()), b.cfg.Size)
			}
			if err := m.Ack(); err != nil {
				return 0, err
			}
			got++
		}
		if err := batch.Error(); err != nil {
			return 0, err
		}
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	return rate(n, d), b.checkDrained(ctx, name)
}

// natsqConsume: Get until n messages, then Flush.
func natsqConsume(ctx context.Context, b *bench, n int) (float64, error) {
	q, nc, name, release, err := b.openNatsq(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	if err := b.fill(ctx, name, n); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		m, err := q.Get(ctx)
		if err != nil {
			return 0, err
		}
		if len(m) != b.cfg.Size {
			return 0, fmt.Errorf("got %d bytes, want %d", len(m), b.cfg.Size)
		}
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	return rate(n, d), b.checkDrained(ctx, name)
}

// rawRoundTrip: Publish one message, then Next (a Fetch of one, which
// returns as soon as it comes) and Ack it, over and over; then Flush.
func rawRoundTrip(ctx context.Context, b *bench, n int) (float64, error) {
	nc, js, name, release, err := b.openRaw(ctx, 0)
	if err != nil {
		return 0, err
	}
	defer release()
	cons, err := js.Consumer(ctx, name, natsq.ConsumerName)
	if err != nil {
		return 0, err
	}
	subj := natsq.Subject(name)
	start := time.Now()
	done := 0
	for done < n && time.Since(start) < roundTripLimit {
		if _, err := js.Publish(ctx, subj, b.msg); err != nil {
			return 0, err
		}
		m, err := cons.Next()
		if err != nil {
			return 0, err
		}
		if err := m.Ack(); err != nil {
			return 0, err
		}
		done++
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	return rate(done, time.Since(start)), b.checkDrained(ctx, name)
}

// natsqRoundTrip: Put one message, then Get it, over and over; then Flush.
func natsqRoundTrip(ctx context.Context, b *bench, n int) (float64, error) {
	q, nc, name, release, err := b.openNatsq(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	start := time.Now()
	done := 0
	for done < n && time.Since(start) < roundTripLimit {
		if err := q.Put(ctx, b.msg); err != nil {
			return 0, err
		}
		if _, err := q.Get(ctx); err != nil {
			return 0, err
		}
		done++
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	return rate(done, time.Since(start)), b.checkDrained(ctx, name)
}

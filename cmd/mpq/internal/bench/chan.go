//go:build linux

package bench

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// chanBackend is the in-process reference: goroutines passing []byte over
// Go channels. The sender hands over a slice of a buffer it never changes;
// the receiver copies the payload into its own buffer, as a queue would.
type chanBackend struct{}

// chanCap is the buffer of the throughput channel.
const chanCap = 1024

func (chanBackend) supports(r row) bool {
	return !r.pool() && (r.kind == throughput || r.kind == roundTrip)
}

func (chanBackend) measure(ctx context.Context, r row, lim limits) (Sample, error) {
	switch r.kind {
	case throughput:
		return chanStream(r, lim)
	case roundTrip:
		ping, pong := &chanEnd{c: make(chan []byte)}, &chanEnd{c: make(chan []byte)}
		var wg sync.WaitGroup
		wg.Go(func() { // echo
			msg := make([]byte, r.size)
			for {
				if _, _, err := ping.get(ctx); err != nil {
					return
				}
				pong.put(ctx, msg, 1)
			}
		})
		s, err := timeRoundTrips(ctx, ping, pong, r.size, lim)
		ping.closeWrite()
		wg.Wait()
		return s, err
	}
	return Sample{}, errors.New("unsupported row")
}

// chanStream runs r.producers goroutines sending to r.consumers goroutines
// over one channel, within the limits, like [procBackend.stream].
func chanStream(r row, lim limits) (Sample, error) {
	c := make(chan []byte, chanCap)
	ctx := context.Background()
	msg := make([]byte, r.size)
	per := max(1, lim.msgs/r.producers)
	got := make([]int64, r.consumers)
	var pwg, cwg sync.WaitGroup
	start := time.Now()
	for range r.producers {
		pwg.Go(func() {
			e := &chanEnd{c: c}
			deadline := time.Now().Add(lim.time)
			for sent := 0; sent < per; sent += batchSize {
				e.put(ctx, msg, min(batchSize, per-sent))
				if time.Now().After(deadline) {
					break
				}
			}
		})
	}
	for i := range r.consumers {
		cwg.Go(func() {
			e := &chanEnd{c: c}
			var n int64
			for {
				k, _, err := e.get(ctx)
				if err != nil {
					break
				}
				n += int64(k)
			}
			got[i] = n
		})
	}
	pwg.Wait()
	close(c)
	cwg.Wait()
	d := time.Since(start)
	var n int64
	for _, k := range got {
		n += k
	}
	return rate(n, r.size, d)
}

// chanEnd is a channel used as an [endpoint] by one goroutine.
type chanEnd struct {
	c   chan []byte
	buf []byte // the receiver's copy of the last message
}

func (e *chanEnd) put(_ context.Context, msg []byte, n int) error {
	for range n {
		e.c <- msg
	}
	return nil
}

func (e *chanEnd) get(context.Context) (int, int, error) {
	m, ok := <-e.c
	if !ok {
		return 0, 0, io.EOF
	}
	e.buf = append(e.buf[:0], m...)
	return 1, len(m), nil
}

func (e *chanEnd) closeWrite() error {
	close(e.c)
	return nil
}

//go:build linux && mpqpool

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/mpq-go/mpq/proc"
)

// squareTask is the pool rows' task, x*x. It is a package-level variable so
// that the pool's workers, this program started again, define it too
// before their proc.Main runs it: the mpq command's main (and the tests'
// TestMain) calls proc.Main.
var squareTask = proc.DefineTask("bench-square", func(_ context.Context, x int) (int, error) { return x * x, nil })

// poolWarmup is the ints of the untimed Map that warms a pool before the
// timed Map; baseline.py warms Python's pools with as many.
const poolWarmup = 1000

// mpqPoolBackend measures mpq's proc.Pool, run by the harness process with
// r.workers worker processes made for each measurement. Making the pool
// and starting its workers is not timed.
type mpqPoolBackend struct{}

func (mpqPoolBackend) supports(r row) bool { return r.pool() }

func (mpqPoolBackend) measure(ctx context.Context, r row, lim limits) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, lim.time+childTimeout)
	defer cancel()
	return measureMpqPool(ctx, r, lim)
}

// measureMpqPool makes a proc.Pool of squareTask with r.workers workers,
// warms it with a Map of poolWarmup ints and then times r's operation:
// one Map of lim.msgs ints (a throughput row), or Submit then Wait of one
// int at a time (a round-trip row), like the echo round trips.
func measureMpqPool(ctx context.Context, r row, lim limits) (s Sample, err error) {
	p, err := proc.NewPool(ctx, squareTask, &proc.PoolOptions{Workers: r.workers})
	if err != nil {
		return Sample{}, err
	}
	defer func() {
		if cerr := closePool(p); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := mapSquares(ctx, p.Map, 0, poolWarmup, nil); err != nil {
		return Sample{}, fmt.Errorf("warm-up Map: %w", err)
	}
	if r.kind == roundTrip {
		e := &submitEnd{submit: func(x int) (func() (int, error), error) {
			fut, err := p.Submit(ctx, x)
			if err != nil {
				return nil, err
			}
			return func() (int, error) { return fut.Wait(ctx) }, nil
		}}
		return timeRoundTrips(ctx, e, e, 0, lim)
	}
	var d time.Duration
	if err := mapSquares(ctx, p.Map, 0, lim.msgs, &d); err != nil {
		return Sample{}, err
	}
	return rate(int64(lim.msgs), 0, d)
}

// closePool closes p and waits for its workers, returning what Close
// returns if it returns an error.
func closePool(p any) error {
	switch c := p.(type) {
	case interface{ Close() error }:
		return c.Close()
	case interface{ Close() }:
		c.Close()
	}
	return nil
}

//go:build linux

package bench

import (
	"context"
	"errors"
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
// timing starts; baseline.py warms Python's pools with as many.
const poolWarmup = 1000

// mpqPoolBackend measures mpq's proc.Pool, run by the harness process with
// r.workers worker processes made for each measurement. Making the pool
// and starting its workers is not timed.
type mpqPoolBackend struct{}

func (mpqPoolBackend) supports(r row) bool { return r.pool() }

func (mpqPoolBackend) measure(ctx context.Context, r row, lim limits) (s Sample, err error) {
	ctx, cancel := context.WithTimeout(ctx, lim.time+childTimeout)
	defer cancel()
	p, err := proc.NewPool(ctx, squareTask, &proc.PoolOptions{Workers: r.workers})
	if err != nil {
		return Sample{}, err
	}
	defer func() {
		if cerr := p.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("Close: %w", cerr)
		}
	}()
	if _, err := mapSquares(ctx, p, poolWarmup); err != nil {
		return Sample{}, fmt.Errorf("warm-up Map: %w", err)
	}
	if r.kind == roundTrip {
		e := &submitEnd{p: p}
		return timeRoundTrips(ctx, e, e, 0, lim)
	}
	d, err := mapSquares(ctx, p, lim.msgs)
	if err != nil {
		return Sample{}, err
	}
	return rate(int64(lim.msgs), 0, d)
}

// mapSquares maps squareTask over the ints 0 to n-1 in one Map, checks the
// results and returns how long the Map took.
func mapSquares(ctx context.Context, p *proc.Pool[int, int], n int) (time.Duration, error) {
	ins := make([]int, n)
	for i := range ins {
		ins[i] = i
	}
	start := time.Now()
	outs, err := p.Map(ctx, ins)
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	if len(outs) != n {
		return d, fmt.Errorf("Map of %d ints returned %d results", n, len(outs))
	}
	for i, y := range outs {
		if y != i*i {
			return d, fmt.Errorf("Map: result %d is %d; want %d", i, y, i*i)
		}
	}
	return d, nil
}

// submitEnd is a pool as an [endpoint], for [timeRoundTrips]: put submits
// the next int, get waits for its square and checks it.
type submitEnd struct {
	p    *proc.Pool[int, int]
	next int
	fut  *proc.Future[int]
}

var errSubmitEndUsage = errors.New("bench: a submitEnd takes one put of one message, then one get")

func (e *submitEnd) put(ctx context.Context, _ []byte, n int) error {
	if n != 1 || e.fut != nil {
		return errSubmitEndUsage
	}
	fut, err := e.p.Submit(ctx, e.next)
	if err != nil {
		return err
	}
	e.fut = fut
	return nil
}

func (e *submitEnd) get(ctx context.Context) (int, int, error) {
	if e.fut == nil {
		return 0, 0, errSubmitEndUsage
	}
	y, err := e.fut.Wait(ctx)
	x := e.next
	e.fut, e.next = nil, e.next+1
	if err != nil {
		return 0, 0, err
	}
	if y != x*x {
		return 0, 0, fmt.Errorf("Submit(%d): got %d; want %d", x, y, x*x)
	}
	return 1, 0, nil
}

func (e *submitEnd) closeWrite() error { return nil }

//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// mapSquares maps squares over the n ints from first with mapFn, timing the
// call alone into *took if took is not nil, and checks the results.
func mapSquares(ctx context.Context, mapFn func(context.Context, []int) ([]int, error), first, n int, took *time.Duration) error {
	ins := make([]int, n)
	for i := range ins {
		ins[i] = first + i
	}
	start := time.Now()
	outs, err := mapFn(ctx, ins)
	if took != nil {
		*took = time.Since(start)
	}
	if err != nil {
		return err
	}
	if len(outs) != n {
		return fmt.Errorf("Map of %d ints returned %d results", n, len(outs))
	}
	for i, y := range outs {
		if y != ins[i]*ins[i] {
			return fmt.Errorf("Map: result %d is %d; want %d", i, y, ins[i]*ins[i])
		}
	}
	return nil
}

// submitEnd is a pool used as an [endpoint] for [timeRoundTrips]: put
// submits the next int, get waits for its square and checks it.
type submitEnd struct {
	// submit submits x and returns a function waiting for its result.
	submit func(x int) (wait func() (int, error), err error)
	next   int
	wait   func() (int, error)
}

var errSubmitEndUsage = errors.New("bench: submitEnd takes one put, then one get")

func (e *submitEnd) put(_ context.Context, _ []byte, n int) error {
	if n != 1 || e.wait != nil {
		return errSubmitEndUsage
	}
	w, err := e.submit(e.next)
	if err != nil {
		return err
	}
	e.wait = w
	return nil
}

func (e *submitEnd) get(context.Context) (int, int, error) {
	if e.wait == nil {
		return 0, 0, errSubmitEndUsage
	}
	y, err := e.wait()
	x := e.next
	e.wait, e.next = nil, e.next+1
	if err != nil {
		return 0, 0, err
	}
	if y != x*x {
		return 0, 0, fmt.Errorf("Submit(%d): got %d; want %d", x, y, x*x)
	}
	return 1, 0, nil
}

func (e *submitEnd) closeWrite() error { return nil }

package proc_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
	"github.com/mpq-go/mpq/proc"
)

// withErr holds an error, which encodes as CBOR but does not decode: an
// interface needs a concrete type.
type withErr struct {
	X   int
	Err error
}

var errOutTask = proc.DefineTask("review-errout", func(ctx context.Context, x int) (withErr, error) {
	return withErr{X: x, Err: errors.New("inner")}, nil
})

var errInTask = proc.DefineTask("review-errin", func(ctx context.Context, in withErr) (int, error) {
	return in.X, nil
})

// TestPoolUndecodableResult: a result the pool cannot decode fails its
// task with ErrDecode rather than leaving Map waiting for ever.
func TestPoolUndecodableResult(t *testing.T) {
	p := newPool(t, errOutTask, &proc.PoolOptions{Workers: 1, MaxAttempts: 2})
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, err := p.Map(ctx, []int{1, 2})
	var te *proc.TaskError
	if !errors.As(err, &te) || !errors.Is(err, mpq.ErrDecode) || len(te.Attempts) != 2 {
		t.Fatalf("Map of results that do not decode: %v; want a *TaskError of 2 attempts matching mpq.ErrDecode", err)
	}
}

// TestPoolUndecodableInput: an input a worker cannot decode fails its task
// with ErrDecode; it does not kill worker after worker for ever.
func TestPoolUndecodableInput(t *testing.T) {
	p := newPool(t, errInTask, &proc.PoolOptions{Workers: 1, MaxAttempts: 2})
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, err := p.Map(ctx, []withErr{{X: 1, Err: errors.New("x")}})
	var te *proc.TaskError
	if !errors.As(err, &te) || !errors.Is(err, mpq.ErrDecode) || len(te.Attempts) != 2 {
		t.Fatalf("Map of inputs that do not decode: %v; want a *TaskError of 2 attempts matching mpq.ErrDecode", err)
	}
	if s := p.Stats(); s.Replaced != 0 {
		t.Errorf("Stats = %+v; want no worker replaced", s)
	}
	outs, err := p.Map(ctx, []withErr{{X: 3}})
	if err != nil || !slices.Equal(outs, []int{3}) {
		t.Errorf("Map of an input that decodes: %v, %v; want [3], nil", outs, err)
	}
	// In one chunk with it, its neighbours run.
	sum, failed := 0, 0
	for out, err := range p.Stream(ctx, slices.Values([]withErr{{X: 1}, {X: 2, Err: errors.New("x")}, {X: 3}})) {
		if err != nil {
			if !errors.As(err, &te) || te.Index != 1 {
				t.Errorf("Stream: %v; want a *TaskError for #1", err)
			}
			failed++
		}
		sum += out
	}
	if sum != 4 || failed != 1 {
		t.Errorf("Stream: results summing to %d, %d failed; want 4, 1", sum, failed)
	}
}

type bigResult [20 << 10]byte

var bigOutTask = proc.DefineTask("review-bigout", func(ctx context.Context, x int) (bigResult, error) {
	return bigResult{}, nil
})

// TestPoolResultTypeTooLarge: a result type whose every value is larger
// than the results queue takes is refused by NewPool: no result, not even
// the report of its failure, could come back.
func TestPoolResultTypeTooLarge(t *testing.T) {
	p, err := proc.NewPool(t.Context(), bigOutTask, &proc.PoolOptions{Workers: 1, Capacity: 64 << 10})
	if p != nil {
		p.Terminate()
	}
	if !errors.Is(err, mpq.ErrInvalidOptions) {
		t.Errorf("NewPool of a %d-byte result type with Capacity 64 KiB: %v; want ErrInvalidOptions", len(bigResult{}), err)
	} else if !strings.Contains(err.Error(), "raise PoolOptions.Capacity") {
		t.Errorf("NewPool's error %q does not say to raise Capacity", err)
	}
	p = newPool(t, bigOutTask, &proc.PoolOptions{Workers: 1, Capacity: 256 << 10})
	if outs, err := p.Map(t.Context(), []int{1, 2}); err != nil || len(outs) != 2 {
		t.Errorf("Map with Capacity 256 KiB: %d results, %v; want 2, nil", len(outs), err)
	}
}

var floatsTask = proc.DefineTask("review-floats", func(ctx context.Context, x [3]float64) ([3]float64, error) {
	return x, nil
})

var boolsTask = proc.DefineTask("review-bools", func(ctx context.Context, x [5]bool) ([5]bool, error) {
	return x, nil
})

var emptyTask = proc.DefineTask("review-empty", func(ctx context.Context, x [0]int) ([0]int, error) {
	return x, nil
})

// TestPoolRawValues checks that fixed-size values, which travel as their
// bytes, come back bit for bit: NaNs with payloads, -0, bools, and values
// of zero size.
func TestPoolRawValues(t *testing.T) {
	p := newPool(t, floatsTask, &proc.PoolOptions{Workers: 1})
	ins := [][3]float64{
		{math.NaN(), math.Copysign(0, -1), math.Inf(-1)},
		{math.Float64frombits(0x7ff8000000000001), 1.5, math.SmallestNonzeroFloat64},
	}
	outs, err := p.Map(t.Context(), ins)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		for j := range ins[i] {
			if got, want := math.Float64bits(outs[i][j]), math.Float64bits(ins[i][j]); got != want {
				t.Errorf("result %d[%d] = %#x; want %#x", i, j, got, want)
			}
		}
	}
	b := newPool(t, boolsTask, &proc.PoolOptions{Workers: 1})
	bins := [][5]bool{{true, false, true, true, false}, {}}
	if bouts, err := b.Map(t.Context(), bins); err != nil || !slices.Equal(bouts, bins) {
		t.Errorf("Map(bools) = %v, %v; want %v", bouts, err, bins)
	}
	e := newPool(t, emptyTask, &proc.PoolOptions{Workers: 1})
	if eouts, err := e.Map(t.Context(), make([][0]int, 10)); err != nil || len(eouts) != 10 {
		t.Errorf("Map(10 zero-size values) = %d results, %v; want 10", len(eouts), err)
	}
	f, err := e.Submit(t.Context(), [0]int{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(t.Context()); err != nil {
		t.Errorf("Submit(zero-size).Wait() = %v", err)
	}
}

// TestPoolWaitWhenDone: once a Future is done, Wait returns its result at
// once, whatever its ctx, as Done's doc says.
func TestPoolWaitWhenDone(t *testing.T) {
	p := newPool(t, squareTask, &proc.PoolOptions{Workers: 1})
	f, err := p.Submit(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	<-f.Done()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range 100 {
		if got, err := f.Wait(ctx); got != 9 || err != nil {
			t.Fatalf("Wait(cancelled ctx) #%d of a done Future = %d, %v; want 9, nil", i, got, err)
		}
	}
}

func init() {
	testutil.Register("pool-seq-panics", func() (err error) {
		p, err := proc.NewPool(context.Background(), squareTask, &proc.PoolOptions{Workers: 1})
		if err != nil {
			return err
		}
		defer p.Terminate()
		defer func() {
			if r := recover(); r != nil {
				testutil.Say("recovered %v", r)
				err = nil
			}
		}()
		seq := func(yield func(int) bool) {
			for i := range 10 {
				if !yield(i) {
					return
				}
			}
			panic("seq panics")
		}
		for _, err := range p.Stream(context.Background(), seq) {
			if err != nil {
				return err
			}
		}
		return fmt.Errorf("the Stream ended without the panic")
	})
}

// TestPoolStreamSeqPanics: a panic in Stream's seq, which another
// goroutine reads, comes back to the goroutine ranging over the Stream,
// which can recover it, as with any iterator; it does not crash the
// program.
func TestPoolStreamSeqPanics(t *testing.T) {
	c := testutil.Start(t, "pool-seq-panics")
	c.Expect("recovered seq panics", timeout)
}

package proc_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mpq-go/mpq/proc"
)

var squareTask = proc.DefineTask("square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

// newPool starts a pool of task and terminates it when the test ends.
func newPool[In, Out any](t testing.TB, task *proc.Task[In, Out], opts *proc.PoolOptions) *proc.Pool[In, Out] {
	t.Helper()
	p, err := proc.NewPool(t.Context(), task, opts)
	if err != nil {
		t.Fatalf("NewPool(%v): %v", task, err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p
}

func TestPoolMap(t *testing.T) {
	p := newPool(t, squareTask, &proc.PoolOptions{Workers: 2})
	for _, n := range []int{0, 1, 7, 1000, 100_000} {
		ins := make([]int, n)
		want := make([]int, n)
		for i := range ins {
			ins[i] = i
			want[i] = i * i
		}
		got, err := p.Map(t.Context(), ins)
		if err != nil {
			t.Fatalf("Map(%d inputs): %v", n, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Map(%d inputs) = %v...; want %v...", n, got[:min(n, 5)], want[:min(n, 5)])
		}
	}
	f, err := p.Submit(t.Context(), 12)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Wait(t.Context()); got != 144 || err != nil {
		t.Errorf("Submit(12).Wait() = %d, %v; want 144, nil", got, err)
	}
	sum := 0
	for out, err := range p.Stream(t.Context(), slices.Values([]int{1, 2, 3, 4})) {
		if err != nil {
			t.Fatal(err)
		}
		sum += out
	}
	if sum != 30 {
		t.Errorf("Stream sum = %d; want 30", sum)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := p.Map(t.Context(), []int{1}); !errors.Is(err, proc.ErrPoolClosed) {
		t.Errorf("Map after Close: %v; want ErrPoolClosed", err)
	}
	if s := p.Stats(); s.Workers != 0 || s.InFlight != 0 {
		t.Errorf("Stats after Close = %+v; want no workers, nothing in flight", s)
	}
}

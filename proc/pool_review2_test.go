//go:build linux

package proc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/testutil"
	"github.com/mpq-go/mpq/proc"
)

var (
	lateInit *proc.Func
	lateRuns int
)

var panicInit = proc.Define("review-panic-init", func(ctx context.Context) error {
	panic("init panics")
})

// TestPoolLifecycle goes through calls a user may make in any order: empty
// calls, a Stream left early, Close and Terminate at once while calls wait,
// calls and Waits after; nothing is left behind.
func TestPoolLifecycle(t *testing.T) {
	testutil.CheckGoroutines(t)
	before, err := testutil.OpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	p, err := proc.NewPool(t.Context(), jobTask, &proc.PoolOptions{Workers: 2, Capacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	pids := p.Pids()
	if outs, err := p.Map(t.Context(), nil); err != nil || outs == nil || len(outs) != 0 {
		t.Errorf("Map(nil) = %#v, %v; want an empty slice", outs, err)
	}
	for _, err := range p.Stream(t.Context(), slices.Values([]job(nil))) {
		t.Errorf("Stream of nothing yielded %v", err)
	}
	n := 0
	endless := func(yield func(job) bool) {
		for i := 0; ; i++ {
			if !yield(job{X: i}) {
				return
			}
		}
	}
	for _, err := range p.Stream(t.Context(), endless) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 1000 {
			break
		}
	}
	slow := job{Do: "slow", Wait: time.Hour}
	f, err := p.Submit(t.Context(), slow)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := p.Map(context.Background(), []job{slow, slow, slow})
		errc <- err
	}()
	waitFor(t, "4 tasks in flight", func() bool { return p.Stats().InFlight == 4 })
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.Close() }()
	go func() { defer wg.Done(); p.Terminate() }()
	wg.Wait()
	if err := <-errc; !errors.Is(err, proc.ErrPoolClosed) {
		t.Errorf("Map during Close and Terminate: %v; want ErrPoolClosed", err)
	}
	if _, err := f.Wait(t.Context()); !errors.Is(err, proc.ErrPoolClosed) {
		t.Errorf("Wait after Terminate: %v; want ErrPoolClosed", err)
	}
	if _, err := p.Submit(t.Context(), job{}); !errors.Is(err, proc.ErrPoolClosed) {
		t.Errorf("Submit after Terminate: %v; want ErrPoolClosed", err)
	}
	for _, err := range p.Stream(t.Context(), endless) {
		if !errors.Is(err, proc.ErrPoolClosed) {
			t.Errorf("Stream after Terminate: %v; want ErrPoolClosed", err)
		}
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("worker %d still there", pid)
		}
	}
	after, err := testutil.OpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	if d := testutil.FDDiff(before, after); len(d) > 0 {
		t.Errorf("descriptors left open: %v", d)
	}
}

// TestPoolNewPoolCtx: the ctx given to NewPool ending terminates the pool.
func TestPoolNewPoolCtx(t *testing.T) {
	testutil.CheckGoroutines(t)
	ctx, cancel := context.WithCancel(t.Context())
	p, err := proc.NewPool(ctx, jobTask, &proc.PoolOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	pids := p.Pids()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Map(context.Background(), []job{{Do: "slow", Wait: time.Hour}})
		errc <- err
	}()
	waitFor(t, "a task in flight", func() bool { return p.Stats().InFlight == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, proc.ErrPoolClosed) {
		t.Errorf("Map when NewPool's ctx ended: %v; want ErrPoolClosed", err)
	}
	waitFor(t, "worker gone", func() bool { return gone(pids[0]) })
	if err := p.Close(); err != nil {
		t.Errorf("Close after NewPool's ctx ended: %v", err)
	}
}

// TestPoolInitRefused: an Init that panics fails NewPool with
// ErrInitFailed and the panic's value; one defined after Main is refused.
func TestPoolInitRefused(t *testing.T) {
	_, err := proc.NewPool(t.Context(), squareTask, &proc.PoolOptions{Workers: 2, Init: panicInit})
	if !errors.Is(err, proc.ErrInitFailed) || !contains(err, "init panics") {
		t.Errorf("NewPool with an Init that panics: %v; want ErrInitFailed naming the panic", err)
	}
	lateRuns++ // a name per run: -count reruns the test in this process
	lateInit = proc.Define(fmt.Sprint("review-late-init-", lateRuns), func(ctx context.Context) error { return nil })
	_, err = proc.NewPool(t.Context(), squareTask, &proc.PoolOptions{Workers: 1, Init: lateInit})
	if !errors.Is(err, proc.ErrUnknownFunc) {
		t.Errorf("NewPool with an Init defined after Main: %v; want ErrUnknownFunc", err)
	}
	late := proc.DefineTask(fmt.Sprint("review-late-task-", lateRuns), func(ctx context.Context, x int) (int, error) { return x, nil })
	if _, err = proc.NewPool(t.Context(), late, nil); !errors.Is(err, proc.ErrUnknownFunc) {
		t.Errorf("NewPool of a task defined after Main: %v; want ErrUnknownFunc", err)
	}
	for _, bad := range []error{
		proc.DefineTask("review-any", func(ctx context.Context, x any) (int, error) { return 0, nil }).Err(),
		proc.DefineTask("review-func", func(ctx context.Context, x int) (func(), error) { return nil, nil }).Err(),
		proc.DefineTask("review-holds-chan", func(ctx context.Context, x struct{ C chan int }) (int, error) { return 0, nil }).Err(),
		proc.DefineTask("review-holds-funcs", func(ctx context.Context, x int) ([]func(), error) { return nil, nil }).Err(),
		proc.DefineTask("review-holds-complex", func(ctx context.Context, x []complex128) (int, error) { return 0, nil }).Err(),
		proc.DefineTask("", func(ctx context.Context, x int) (int, error) { return 0, nil }).Err(),
		proc.DefineTask[int, int]("review-nil", nil).Err(),
	} {
		if !errors.Is(bad, proc.ErrInvalidFunc) {
			t.Errorf("DefineTask refused with %v; want ErrInvalidFunc", bad)
		}
	}
}

func contains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

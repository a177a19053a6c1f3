package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

var cmdSquare = proc.DefineTask("sq-cmd", func(ctx context.Context, x int) (int, error) {
	if x < 0 {
		time.Sleep(time.Hour)
	}
	return x * x, nil
})

// poolHolder runs a pool of one worker, with one task held by the worker
// and two waiting, and says ready.
var poolHolder = proc.Define("pool-holder", func(ctx context.Context, ready *mpq.Queue) error {
	p, err := proc.NewPool(ctx, cmdSquare, &proc.PoolOptions{Workers: 1})
	if err != nil {
		return err
	}
	defer p.Terminate()
	for range 3 {
		if _, err := p.Submit(ctx, -1); err != nil {
			return err
		}
	}
	for p.Stats().InFlight != 3 {
		time.Sleep(time.Millisecond)
	}
	if err := ready.Put(ctx, []byte(fmt.Sprint(p.Pids()[0]))); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
})

// mpq ls shows a pool's queues as what they are: its tasks, held or
// waiting, and its results.
func TestPoolQueuesListed(t *testing.T) {
	ready, err := mpq.New(&mpq.Options{Capacity: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	p, err := poolHolder.Start(t.Context(), ready)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); p.Wait() }()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := ready.Get(ctx); err != nil {
		t.Fatalf("waiting for the pool: %v", err)
	}
	mine := lsJSON(t, t.TempDir(), p.Pid())
	tasks := byLabel(t, mine, "pool sq-cmd: tasks")
	results := byLabel(t, mine, "pool sq-cmd: results")
	if want := fmt.Sprintf("@%d:pool sq-cmd: tasks", p.Pid()); tasks.Name != want || tasks.Puts != 3 || tasks.InFlight != 1 || len(tasks.Procs) != 2 {
		t.Errorf("tasks queue: %+v; want %s, 3 tasks put, 1 held, pool and worker attached", tasks, want)
	}
	if want := fmt.Sprintf("@%d:pool sq-cmd: results", p.Pid()); results.Name != want || results.Len != 0 || len(results.Procs) != 2 {
		t.Errorf("results queue: %+v; want %s, empty, pool and worker attached", results, want)
	}
}

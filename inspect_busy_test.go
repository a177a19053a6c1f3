package mpq_test

import (
	"context"
	"sync"
	"testing"

	"github.com/mpq-go/mpq"
)

// review: failing test: Inspect's check of the positions (free <= head <=
// tail <= free+capacity) reads head, then tail, then head again, without
// the locks, so on a busy sound queue a consumer that moves head past the
// tail read before (or a producer that moves tail a ring ahead of the
// older head) makes Inspect, and mpq stat, call the queue CORRUPT.
func TestInspectBusyQueueNotCorrupt(t *testing.T) {
	dir := t.TempDir()
	opts := &mpq.Options{Dir: dir, Capacity: 4096}
	q, err := mpq.Open("busy", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		msg := make([]byte, 100)
		for ctx.Err() == nil {
			q.Put(ctx, msg)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			q.Get(ctx)
		}
	}()
	var bad string
	for range 20000 {
		s, err := mpq.Inspect("busy", opts)
		if err != nil {
			bad = err.Error()
			break
		}
		if s.Corrupt != "" {
			bad = s.Corrupt
			break
		}
	}
	cancel()
	wg.Wait()
	if bad != "" {
		t.Fatalf("Inspect of a sound queue in use: got Corrupt %q; want \"\"", bad)
	}
}

package mpq_test

import (
	"context"
	"sync"
	"testing"

	"github.com/mpq-go/mpq"
)

// TestInspectBusyQueueNotCorrupt: Inspect's check of the positions (free
// <= head <= tail <= free+capacity) reads them without the locks while a
// busy queue moves them; it must never call a sound queue CORRUPT (it
// reports only an inconsistency that reads the same twice).
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

//go:build mpqhooks

package proc_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mpq-go/mpq/proc"
)

// TestPoolWorkerDiesMidReport kills a worker between two reports of one
// chunk's results (small queues split them): the half reported stands, the
// other half runs again, and the death, after the tasks ran, costs no
// attempt.
func TestPoolWorkerDiesMidReport(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "hook")
	p := newPool(t, bigTask, &proc.PoolOptions{Workers: 2, Capacity: 64 << 10,
		Proc: &proc.Options{Env: append(os.Environ(), "MPQ_POOL_HOOK=split:"+marker)}})
	ins := make([]int, 200)
	for i := range ins {
		ins[i] = i
	}
	outs, err := p.Map(t.Context(), ins)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no worker died between two reports: %v", err)
	}
	for i := range outs {
		if !bytes.Equal(outs[i], big(i)) {
			t.Fatalf("result %d: %d bytes, not big(%d)", i, len(outs[i]), i)
		}
	}
	waitFor(t, "the dead worker replaced", func() bool { return p.Stats().Replaced == 1 })
	if s := p.Stats(); s.Retried != 0 || s.Done != 200 || s.Failed != 0 || s.InFlight != 0 {
		t.Errorf("Stats = %+v; want none retried or failed, 200 done, nothing in flight", s)
	}
}

// big is bigTask's result for x: 5000 bytes that say x.
func big(x int) []byte {
	b := bytes.Repeat([]byte{byte(x)}, 5000)
	b[0] = byte(x >> 8)
	return b
}

// bigTask returns a result much larger than its input, so that the results
// of a chunk take more than one report in a small queue.
var bigTask = proc.DefineTask("review-big", func(ctx context.Context, x int) ([]byte, error) {
	return big(x), nil
})

// TestPoolWorkerDiesAfterReturned kills a task's worker, then the worker
// that took the chunk again, after it said the chunk came back and before
// it acknowledged it: the chunk comes back twice, runs again once, and only
// the first death, mid-task, costs an attempt.
func TestPoolWorkerDiesAfterReturned(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "hook")
	p := newPool(t, jobTask, &proc.PoolOptions{Workers: 2,
		Proc: &proc.Options{Env: append(os.Environ(), "MPQ_POOL_HOOK=returned:"+marker)}})
	js := jobs(100, "", dir)
	js[40].Do = "killonce"
	outs, err := p.Map(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	checkSquares(t, outs)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no worker died after saying a chunk came back: %v", err)
	}
	waitFor(t, "both dead workers replaced", func() bool { return p.Stats().Replaced == 2 })
	if s := p.Stats(); s.Retried != 1 || s.Done != 100 || s.Failed != 0 || s.InFlight != 0 {
		t.Errorf("Stats = %+v; want 1 retried, none failed, 100 done, nothing in flight", s)
	}
}

//go:build mpqhooks

package proc_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mpq-go/mpq/proc"
)

// TestPoolWorkerDiesBetween kills a worker at the two points a task cannot
// be killed at from outside on purpose: after it took a chunk and before it
// marked the board, and after it put the chunk's results and before it
// acknowledged the chunk. Neither costs an attempt; every result comes
// back once.
func TestPoolWorkerDiesBetween(t *testing.T) {
	for _, point := range []string{"received", "reported"} {
		t.Run(point, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "hook")
			p := newPool(t, jobTask, &proc.PoolOptions{Workers: 2,
				Proc: &proc.Options{Env: append(os.Environ(), "MPQ_POOL_HOOK="+point+":"+marker)}})
			outs, err := p.Map(t.Context(), jobs(200, "", ""))
			if err != nil {
				t.Fatal(err)
			}
			checkSquares(t, outs)
			if _, err := os.Stat(marker); err != nil {
				t.Fatalf("no worker died at %s: %v", point, err)
			}
			waitFor(t, "the dead worker replaced", func() bool { return p.Stats().Replaced == 1 })
			if s := p.Stats(); s.Retried != 0 || s.Done != 200 || s.Failed != 0 || s.Workers != 2 {
				t.Errorf("Stats = %+v; want none retried or failed, 200 done, 2 workers", s)
			}
		})
	}
}

package proc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpq-go/mpq/proc"
)

// runCount marks one more run of a task in dir and returns how many runs,
// this one included, dir has seen, in any process.
func runCount(dir string) int {
	for n := 1; ; n++ {
		if once(dir, fmt.Sprint("run-", n)) {
			return n
		}
	}
}

// exitZeroTask calls os.Exit(0) while it runs, the first 5 times; after
// that it returns an error saying how often it ran, so that a pool that
// never charges the exit still ends the test.
var exitZeroTask = proc.DefineTask("review-exit0", func(ctx context.Context, dir string) (int, error) {
	if n := runCount(dir); n > 5 {
		return 0, fmt.Errorf("ran %d times", n)
	}
	os.Exit(0)
	return 0, nil
})

// TestPoolTaskExitsZero runs a task that makes its worker exit with status
// 0 every time: that is a death while running the task, like any other
// exit, so the task fails after MaxAttempts runs, each attempt saying the
// worker exited. (A pool that charged only exits with an error would run
// it again for ever.)
func TestPoolTaskExitsZero(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, exitZeroTask, &proc.PoolOptions{Workers: 2})
	_, err := p.Map(t.Context(), []string{dir})
	var te *proc.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("Map(a task that exits 0) = %v; want a *TaskError", err)
	}
	if len(te.Attempts) != proc.DefaultMaxAttempts {
		t.Fatalf("%d attempts: %v; want %d", len(te.Attempts), err, proc.DefaultMaxAttempts)
	}
	for i, a := range te.Attempts {
		if a.Signal != 0 || a.Exited != 0 || a.Panic || !strings.Contains(a.Message, "exited") {
			t.Errorf("attempt %d = %+v (%v); want the worker's exit, status 0", i+1, a, a)
		}
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "run-*"))
	if len(runs) != proc.DefaultMaxAttempts {
		t.Errorf("the task ran %d times; want %d", len(runs), proc.DefaultMaxAttempts)
	}
	if s := p.Stats(); s.Failed != 1 || s.Retried != int64(proc.DefaultMaxAttempts-1) || s.InFlight != 0 {
		t.Errorf("Stats = %+v; want 1 failed, %d retried, nothing in flight", s, proc.DefaultMaxAttempts-1)
	}
}

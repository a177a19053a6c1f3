package proc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
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

// A picky is a value that encodes whatever it holds but refuses to decode
// 13, as a type with a validating UnmarshalCBOR (or UnmarshalBinary) may.
type picky struct{ N int }

func (v picky) MarshalCBOR() ([]byte, error) {
	if v.N < 0 || v.N > 23 {
		return nil, fmt.Errorf("picky %d: out of range", v.N)
	}
	return []byte{byte(v.N)}, nil // CBOR's small unsigned integer
}

func (v *picky) UnmarshalCBOR(b []byte) error {
	if len(b) != 1 || b[0] > 23 || b[0] == 13 {
		return fmt.Errorf("picky: %x refused", b)
	}
	v.N = int(b[0])
	return nil
}

var pickyOutTask = proc.DefineTask("review-picky-out", func(ctx context.Context, x int) (picky, error) {
	return picky{x}, nil
})

var pickyInTask = proc.DefineTask("review-picky-in", func(ctx context.Context, x picky) (int, error) {
	return x.N * x.N, nil
})

// TestPoolUndecodable runs tasks whose result, or input, the pool or its
// worker cannot decode although it was encoded: that task fails (an
// attempt saying what could not be decoded), its neighbours in the chunk
// come back, and nothing waits for ever. (A pool that dropped the report
// of results, or a worker that exited on a chunk it could not decode,
// would leave the task unsettled, its chunk redelivered for ever.)
func TestPoolUndecodable(t *testing.T) {
	ins := make([]int, 20)
	for i := range ins {
		ins[i] = i
	}
	check := func(t *testing.T, results func(yield func(int, error) bool)) {
		t.Helper()
		ok, failed := 0, 0
		for x, err := range results {
			var te *proc.TaskError
			switch {
			case errors.As(err, &te) && te.Index == 13 && len(te.Attempts) > 0 &&
				errors.Is(err, mpq.ErrDecode) && strings.Contains(err.Error(), "refused"):
				failed++
			case err != nil:
				t.Fatalf("Stream: %v; want one *TaskError, for #13, saying it cannot be decoded", err)
			default:
				ok++
				_ = x
			}
		}
		if ok != 19 || failed != 1 {
			t.Errorf("%d results and %d failed; want 19 and 1 (#13)", ok, failed)
		}
	}
	// A guard against the hang, not a measure of speed.
	guard := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), timeout/4)
		t.Cleanup(cancel)
		return ctx
	}
	t.Run("result", func(t *testing.T) {
		ctx := guard(t)
		p := newPool(t, pickyOutTask, &proc.PoolOptions{Workers: 1})
		check(t, func(yield func(int, error) bool) {
			for out, err := range p.Stream(ctx, slices.Values(ins)) {
				if !yield(out.N, err) {
					return
				}
			}
		})
		if s := p.Stats(); s.InFlight != 0 || s.Done != 19 || s.Failed != 1 {
			t.Errorf("Stats = %+v; want 19 done, 1 failed, nothing in flight", s)
		}
	})
	t.Run("input", func(t *testing.T) {
		ctx := guard(t)
		p := newPool(t, pickyInTask, &proc.PoolOptions{Workers: 1})
		pins := make([]picky, len(ins))
		for i := range pins {
			pins[i] = picky{i}
		}
		check(t, func(yield func(int, error) bool) {
			for out, err := range p.Stream(ctx, slices.Values(pins)) {
				if !yield(out, err) {
					return
				}
			}
		})
		if s := p.Stats(); s.InFlight != 0 || s.Done != 19 || s.Failed != 1 || s.Replaced != 0 {
			t.Errorf("Stats = %+v; want 19 done, 1 failed, nothing in flight, no worker replaced", s)
		}
	})
}

// A mark tells markTask what to do: wait until the file Release exists,
// or else create the file Name in Dir.
type mark struct {
	Dir, Name, Release string
}

var markTask = proc.DefineTask("review-mark", func(ctx context.Context, m mark) (int, error) {
	if m.Release != "" {
		for {
			if _, err := os.Stat(m.Release); err == nil {
				return 0, nil
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return 0, os.WriteFile(filepath.Join(m.Dir, m.Name), nil, 0o600)
})

// TestPoolAbandonedNotRun abandons more calls than the board's ring of
// abandoned calls holds while their tasks wait in the tasks queue: as
// Submit's doc says, none of them runs (no worker took it yet).
func TestPoolAbandonedNotRun(t *testing.T) {
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	p := newPool(t, markTask, &proc.PoolOptions{Workers: 1})
	blocker, err := p.Submit(t.Context(), mark{Release: release})
	if err != nil {
		t.Fatal(err)
	}
	const calls = 100
	var fs []*proc.Future[int]
	var cancels []context.CancelFunc
	for i := range calls {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		f, err := p.Submit(ctx, mark{Dir: dir, Name: fmt.Sprint("ran-", i)})
		if err != nil {
			t.Fatal(err)
		}
		fs, cancels = append(fs, f), append(cancels, cancel)
	}
	for i, f := range fs {
		cancels[i]()
		if _, err := f.Wait(t.Context()); !errors.Is(err, context.Canceled) {
			t.Fatalf("call %d: Wait after its ctx ended = %v; want context.Canceled", i, err)
		}
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	// One worker, tasks in order: once this is done, every abandoned task
	// was taken and skipped, or run.
	if _, err := p.Map(t.Context(), []mark{{Dir: dir, Name: "last"}}); err != nil {
		t.Fatal(err)
	}
	ran, _ := filepath.Glob(filepath.Join(dir, "ran-*"))
	if len(ran) > 0 {
		t.Errorf("%d of %d abandoned tasks ran (%s...); want none", len(ran), calls, filepath.Base(ran[0]))
	}
}

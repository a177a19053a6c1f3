package proc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

var squareTask = proc.DefineTask("square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

// A job tells jobTask what to do.
type job struct {
	X    int
	Do   string // "", "kill", "killonce", "error", "errortwice", "panic", "gopanic", "exit", "notexist", "sleep", "slow"
	Dir  string // for the markers of "killonce" and "errortwice"
	Wait time.Duration
}

// A done is what jobTask returns.
type done struct {
	Sq  int
	Pid int
}

// once reports whether this is the first time name is marked in dir, in any
// process.
func once(dir, name string) bool {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

var jobTask = proc.DefineTask("job", func(ctx context.Context, j job) (done, error) {
	switch j.Do {
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "killonce":
		if once(j.Dir, fmt.Sprint("kill-", j.X)) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	case "error":
		return done{}, fmt.Errorf("job %d: no good", j.X)
	case "errortwice":
		if once(j.Dir, fmt.Sprint(j.X, "-1")) || once(j.Dir, fmt.Sprint(j.X, "-2")) {
			return done{}, fmt.Errorf("job %d: not yet", j.X)
		}
	case "notexist":
		return done{}, fmt.Errorf("job %d: %w", j.X, fs.ErrNotExist)
	case "panic":
		panic(fmt.Sprintf("job %d panics", j.X))
	case "gopanic":
		go panic("job's goroutine panics")
		select {}
	case "exit":
		os.Exit(7)
	case "sleep":
		time.Sleep(time.Hour) // ignores ctx: only TaskTimeout stops it
	case "slow":
		if j.Dir != "" {
			once(j.Dir, fmt.Sprint("started-", j.X))
		}
		select {
		case <-time.After(j.Wait):
		case <-ctx.Done():
			return done{}, ctx.Err()
		}
	}
	return done{Sq: j.X * j.X, Pid: os.Getpid()}, nil
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

// jobs returns n jobs 0..n-1 doing do.
func jobs(n int, do string, dir string) []job {
	js := make([]job, n)
	for i := range js {
		js[i] = job{X: i, Do: do, Dir: dir}
	}
	return js
}

// checkSquares checks that outs are the squares of 0..len-1.
func checkSquares(t *testing.T, outs []done) {
	t.Helper()
	for i, o := range outs {
		if o.Sq != i*i {
			t.Fatalf("result %d = %d; want %d", i, o.Sq, i*i)
		}
	}
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
	if s := p.Stats(); s.Done != 101_008+1+4 || s.Workers != 2 || s.InFlight != 0 || s.Retried != 0 {
		t.Errorf("Stats = %+v; want Done %d, 2 workers, nothing in flight or retried", s, 101_008+1+4)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := p.Map(t.Context(), []int{1}); !errors.Is(err, proc.ErrPoolClosed) {
		t.Errorf("Map after Close: %v; want ErrPoolClosed", err)
	}
	if _, err := p.Submit(t.Context(), 1); !errors.Is(err, proc.ErrPoolClosed) {
		t.Errorf("Submit after Close: %v; want ErrPoolClosed", err)
	}
	if s := p.Stats(); s.Workers != 0 || s.InFlight != 0 {
		t.Errorf("Stats after Close = %+v; want no workers, nothing in flight", s)
	}
}

// TestPoolBytes checks that []byte inputs and outputs travel as they are.
func TestPoolBytes(t *testing.T) {
	p := newPool(t, reverseTask, &proc.PoolOptions{Workers: 2})
	ins := [][]byte{nil, {}, []byte("abc"), make([]byte, 100_000)}
	ins[3][0] = 1
	outs, err := p.Map(t.Context(), ins)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range ins {
		want := slices.Clone(in)
		slices.Reverse(want)
		if !slices.Equal(outs[i], want) {
			t.Errorf("result %d: %d bytes, want %d reversed", i, len(outs[i]), len(in))
		}
	}
}

var reverseTask = proc.DefineTask("reverse", func(ctx context.Context, b []byte) ([]byte, error) {
	slices.Reverse(b)
	return b, nil
})

// TestPoolWorkerKilled kills workers while they run a task, and while they
// are idle: each death is one retry of the task it held (none for the idle
// one), every result comes back once, and the other workers go on.
func TestPoolWorkerKilled(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, jobTask, &proc.PoolOptions{Workers: 3})
	js := jobs(300, "", dir)
	for _, x := range []int{5, 150, 299} {
		js[x].Do = "killonce"
	}
	outs, err := p.Map(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	checkSquares(t, outs)
	if s := p.Stats(); s.Retried != 3 || s.Replaced != 3 || s.Failed != 0 || s.Done != 300 {
		t.Errorf("Stats = %+v; want 3 retried, 3 replaced, none failed, 300 done", s)
	}

	// An idle worker: killed between calls, it costs no attempt.
	before := p.Stats()
	pids := p.Pids()
	if len(pids) != 3 {
		t.Fatalf("Pids() = %v; want 3", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	outs, err = p.Map(t.Context(), jobs(50, "", dir))
	if err != nil {
		t.Fatal(err)
	}
	checkSquares(t, outs)
	waitFor(t, "the idle worker replaced", func() bool { return p.Stats().Replaced == before.Replaced+1 })
	if s := p.Stats(); s.Retried != before.Retried || s.Workers != 3 {
		t.Errorf("Stats after an idle worker died = %+v; want %d retried, 3 workers", s, before.Retried)
	}
	for _, pid := range pids[1:] {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("worker %d, not killed, is gone: %v", pid, err)
		}
	}
}

// waitFor waits until ok, failing the test after timeout.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPoolPoisonTask runs a task that kills its worker every time: it fails
// after MaxAttempts with the signal named, and its neighbours, other calls
// and the pool go on.
func TestPoolPoisonTask(t *testing.T) {
	p := newPool(t, jobTask, &proc.PoolOptions{Workers: 2})
	js := jobs(100, "", "")
	js[13].Do = "kill"
	other, err := p.Submit(t.Context(), job{X: 7, Do: "slow", Wait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Map(t.Context(), js)
	var te *proc.TaskError
	if !errors.As(err, &te) || !errors.Is(err, proc.ErrTaskFailed) {
		t.Fatalf("Map with a poison task: %v; want a *TaskError", err)
	}
	if te.Index != 13 || len(te.Attempts) != proc.DefaultMaxAttempts || te.Task != "job" {
		t.Errorf("TaskError = %+v; want task job, index 13, %d attempts", te, proc.DefaultMaxAttempts)
	}
	for i, a := range te.Attempts {
		if a.Signal != syscall.SIGKILL || a.Pid == 0 {
			t.Errorf("attempt %d = %+v; want killed by SIGKILL, with its pid", i+1, a)
		}
	}
	if msg := err.Error(); !strings.Contains(msg, "#13") || !strings.Contains(msg, "killed by signal killed") {
		t.Errorf("error %q; want it to name task #13 and the signal", msg)
	}
	if got, err := other.Wait(t.Context()); err != nil || got.Sq != 49 {
		t.Errorf("the other call: %v, %v; want 49, nil", got, err)
	}
	outs, err := p.Map(t.Context(), jobs(100, "", ""))
	if err != nil {
		t.Fatalf("Map after the poison task: %v", err)
	}
	checkSquares(t, outs)

	// In a Stream the poison task is one failed result among the others.
	js[13].Do, js[50].Do = "kill", "kill"
	n, failed := 0, map[int]bool{}
	for out, err := range p.Stream(t.Context(), slices.Values(js)) {
		if errors.As(err, &te) {
			failed[te.Index] = true
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n += out.Sq
	}
	sum := 0
	for i := range 100 {
		if i != 13 && i != 50 {
			sum += i * i
		}
	}
	if n != sum || !failed[13] || !failed[50] || len(failed) != 2 {
		t.Errorf("Stream: sum %d, failed %v; want %d, [13 50]", n, failed, sum)
	}
}

// TestPoolAttempts checks what each way a task fails counts as, and what
// its TaskError says.
func TestPoolAttempts(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, jobTask, &proc.PoolOptions{Workers: 2, TaskTimeout: 300 * time.Millisecond,
		Proc: &proc.Options{Stderr: io.Discard}}) // the panics' reports
	for _, tc := range []struct {
		do     string
		check  func(a proc.Attempt) bool
		is     error
		detail string
	}{
		{"error", func(a proc.Attempt) bool { return a.Message == "job 1: no good" }, nil, "no good"},
		{"notexist", func(a proc.Attempt) bool { return errors.Is(a, fs.ErrNotExist) }, fs.ErrNotExist, "file does not exist"},
		{"panic", func(a proc.Attempt) bool {
			return a.Panic && a.Message == "job 1 panics" && strings.Contains(a.Stack, "pool_test.go")
		}, nil, "panic: job 1 panics"},
		{"gopanic", func(a proc.Attempt) bool {
			return a.Signal == 0 && a.Exited == proc.ExitPanic && a.Panic && strings.Contains(a.Message, "goroutine panics")
		}, nil, "goroutine panics"},
		{"exit", func(a proc.Attempt) bool { return a.Exited == 7 && a.Signal == 0 }, nil, "status 7"},
		{"sleep", func(a proc.Attempt) bool {
			return a.Timeout == 300*time.Millisecond && errors.Is(a, proc.ErrTaskTimeout)
		},
			proc.ErrTaskTimeout, "ran past TaskTimeout 300ms"},
	} {
		t.Run(tc.do, func(t *testing.T) {
			f, err := p.Submit(t.Context(), job{X: 1, Do: tc.do})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Wait(t.Context())
			var te *proc.TaskError
			if !errors.As(err, &te) {
				t.Fatalf("Wait: %v; want a *TaskError", err)
			}
			if len(te.Attempts) != proc.DefaultMaxAttempts {
				t.Fatalf("%d attempts; want %d", len(te.Attempts), proc.DefaultMaxAttempts)
			}
			for i, a := range te.Attempts {
				if !tc.check(a) {
					t.Errorf("attempt %d: %+v", i+1, a)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q does not say %q", err, tc.detail)
			}
		})
	}
	t.Run("errortwice", func(t *testing.T) {
		before := p.Stats().Retried
		f, err := p.Submit(t.Context(), job{X: 3, Do: "errortwice", Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.Wait(t.Context()); err != nil || got.Sq != 9 {
			t.Fatalf("Wait = %v, %v; want 9 after two failed attempts", got, err)
		}
		if r := p.Stats().Retried - before; r != 2 {
			t.Errorf("retried %d; want 2", r)
		}
	})
}

// TestPoolCancel cancels calls: each returns at once with the ctx's error,
// abandons its own tasks only, and the pool goes on.
func TestPoolCancel(t *testing.T) {
	p := newPool(t, jobTask, &proc.PoolOptions{Workers: 2})
	slow := jobs(1000, "slow", "")
	for i := range slow {
		slow[i].Wait = 5 * time.Millisecond
	}
	other, err := p.Submit(t.Context(), job{X: 4, Do: "slow", Wait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Map(ctx, slow)
		errc <- err
	}()
	waitFor(t, "tasks running", func() bool { return p.Stats().Done > 2 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Map after cancel: %v; want context.Canceled", err)
	}
	if got, err := other.Wait(t.Context()); err != nil || got.Sq != 16 {
		t.Errorf("the other call: %v, %v; want 16, nil", got, err)
	}
	outs, err := p.Map(t.Context(), jobs(20, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	checkSquares(t, outs)
	if s := p.Stats(); s.InFlight != 0 || s.Done >= 1000 {
		t.Errorf("Stats = %+v; want nothing in flight, and the abandoned tasks not all run", s)
	}

	sctx, scancel := context.WithCancel(t.Context())
	f, err := p.Submit(sctx, job{X: 2, Do: "slow", Wait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	scancel()
	if _, err := f.Wait(t.Context()); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after Submit's ctx was cancelled: %v; want context.Canceled", err)
	}
	wctx, wcancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer wcancel()
	g, err := p.Submit(t.Context(), job{X: 5, Do: "slow", Wait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait(short ctx) = %v; want DeadlineExceeded", err)
	}
	if got, err := g.Wait(t.Context()); err != nil || got.Sq != 25 {
		t.Errorf("Wait again = %v, %v; want 25: Wait's ctx does not abandon the task", got, err)
	}

	// Breaking out of a Stream abandons the rest.
	n := 0
	for _, err := range p.Stream(t.Context(), slices.Values(slow)) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if s := p.Stats(); s.InFlight != 0 {
		t.Errorf("Stats after breaking out of a Stream = %+v; want nothing in flight", s)
	}
}

// TestPoolMaxTasksPerWorker checks that workers are replaced after the
// count.
func TestPoolMaxTasksPerWorker(t *testing.T) {
	p := newPool(t, jobTask, &proc.PoolOptions{Workers: 2, MaxTasksPerWorker: 10})
	outs, err := p.Map(t.Context(), jobs(100, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	checkSquares(t, outs)
	per := map[int]int{}
	for _, o := range outs {
		per[o.Pid]++
	}
	for pid, n := range per {
		if n > 10 {
			t.Errorf("worker %d ran %d tasks; want at most 10", pid, n)
		}
	}
	// Chunks are of 10 tasks here, so each worker ran one and retired.
	if len(per) != 10 {
		t.Errorf("%d workers ran 100 tasks; want 10", len(per))
	}
	waitFor(t, "every retired worker replaced", func() bool { s := p.Stats(); return s.Replaced == 10 && s.Workers == 2 })
}

// initState is set by poolInit in each worker.
var initState string

var poolInit = proc.Define("pool-init", func(ctx context.Context, q *mpq.Queue, s string) error {
	if s == "fail" {
		return errors.New("init refuses")
	}
	initState = s
	return q.Put(ctx, []byte(fmt.Sprint(os.Getpid())))
})

var initTask = proc.DefineTask("init-state", func(ctx context.Context, x int) (string, error) {
	return initState, nil
})

// TestPoolInit checks that Init runs once in each worker, before its
// tasks, with its arguments, and that a failing Init fails NewPool.
func TestPoolInit(t *testing.T) {
	q := newQueue(t)
	p := newPool(t, initTask, &proc.PoolOptions{Workers: 3, Init: poolInit, InitArgs: []any{q, "ready"}})
	if n := q.Len(); n != 3 {
		t.Errorf("Init ran %d times when NewPool returned; want 3", n)
	}
	outs, err := p.Map(t.Context(), make([]int, 50))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o != "ready" {
			t.Fatalf("task %d saw %q; want what Init set", i, o)
		}
	}

	_, err = proc.NewPool(t.Context(), initTask, &proc.PoolOptions{Workers: 2, Init: poolInit, InitArgs: []any{q, "fail"}})
	if !errors.Is(err, proc.ErrInitFailed) || !strings.Contains(err.Error(), "init refuses") {
		t.Errorf("NewPool with a failing Init: %v; want ErrInitFailed saying why", err)
	}
}

// TestPoolOptions checks what NewPool refuses.
func TestPoolOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts proc.PoolOptions
		is   error
	}{
		{"negative workers", proc.PoolOptions{Workers: -1}, mpq.ErrInvalidOptions},
		{"too many workers", proc.PoolOptions{Workers: 1000}, mpq.ErrInvalidOptions},
		{"negative attempts", proc.PoolOptions{MaxAttempts: -1}, mpq.ErrInvalidOptions},
		{"negative timeout", proc.PoolOptions{TaskTimeout: -time.Second}, mpq.ErrInvalidOptions},
		{"negative max tasks", proc.PoolOptions{MaxTasksPerWorker: -1}, mpq.ErrInvalidOptions},
		{"detached", proc.PoolOptions{Proc: &proc.Options{Detached: true}}, mpq.ErrInvalidOptions},
		{"init args without init", proc.PoolOptions{InitArgs: []any{1}}, mpq.ErrInvalidOptions},
		{"init arity", proc.PoolOptions{Init: poolInit}, proc.ErrInvalidArgs},
		{"init arg type", proc.PoolOptions{Init: poolInit, InitArgs: []any{1, "x"}}, proc.ErrInvalidArgs},
		{"huge capacity", proc.PoolOptions{Capacity: 1 << 41}, mpq.ErrInvalidOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := proc.NewPool(t.Context(), squareTask, &tc.opts)
			if !errors.Is(err, tc.is) {
				t.Errorf("NewPool(%+v) = %v; want %v", tc.opts, err, tc.is)
			}
			if p != nil {
				p.Terminate()
			}
		})
	}
	bad := proc.DefineTask("bad-chan", func(ctx context.Context, c chan int) (int, error) { return 0, nil })
	if _, err := proc.NewPool(t.Context(), bad, nil); !errors.Is(err, proc.ErrInvalidFunc) {
		t.Errorf("NewPool(task of a chan) = %v; want ErrInvalidFunc", err)
	}
	dup := proc.DefineTask("square", func(ctx context.Context, x int) (int, error) { return 0, nil })
	if !errors.Is(dup.Err(), proc.ErrInvalidFunc) {
		t.Errorf("a second task named square: Err() = %v; want ErrInvalidFunc", dup.Err())
	}
	if _, err := proc.NewPool[int, int](t.Context(), nil, nil); !errors.Is(err, proc.ErrInvalidFunc) {
		t.Errorf("NewPool(nil task) = %v; want ErrInvalidFunc", err)
	}
}

// TestPoolCancelStopsRunningTask checks that abandoning a call cancels the
// ctx of its task that a worker is running: the only worker is free again
// for the next call, long before the task's hour is up.
func TestPoolCancelStopsRunningTask(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a running task of an abandoned call is cancelled on Linux only")
	}
	dir := t.TempDir()
	p := newPool(t, jobTask, &proc.PoolOptions{Workers: 1})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Map(ctx, []job{{X: 1, Do: "slow", Wait: time.Hour, Dir: dir}})
		errc <- err
	}()
	waitFor(t, "the task running", func() bool {
		_, err := os.Stat(filepath.Join(dir, "started-1"))
		return err == nil
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Map: %v; want context.Canceled", err)
	}
	wctx, wcancel := context.WithTimeout(t.Context(), timeout)
	defer wcancel()
	f, err := p.Submit(wctx, job{X: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Wait(wctx); err != nil || got.Sq != 9 {
		t.Fatalf("the next task: %v, %v; want 9 (the abandoned task still holds the only worker?)", got, err)
	}
	if s := p.Stats(); s.Retried != 0 || s.Failed != 0 || s.Replaced != 0 {
		t.Errorf("Stats = %+v; want no attempt charged and no worker replaced for an abandoned task", s)
	}
}

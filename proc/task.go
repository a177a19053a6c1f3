package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/mpq-go/mpq"
)

// A Task is a function a [Pool]'s worker processes run, made by
// [DefineTask]. Its methods are safe for concurrent use.
type Task[In, Out any] struct {
	name string
	fn   func(context.Context, In) (Out, error)
	work *Func // the worker process's function
	err  error // why DefineTask refused it
	ins  sliceCodec[In]
	outs sliceCodec[Out]
}

// DefineTask registers fn under name as a task that a [Pool] of worker
// processes can run: pass the result to [NewPool]. Define it in a
// package-level variable, as with [Define], so that the workers, which run
// the same program, define it too before [Main] runs:
//
//	var square = proc.DefineTask("square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
// In and Out are plain values: they travel between processes encoded as
// CBOR, as [Func.Start]'s plain arguments do ([]byte as a byte string,
// copied and not otherwise encoded), so they cannot be or hold queues,
// conns, files, channels or functions. Only exported struct fields travel.
// Fixed-size numbers and bools, and arrays of them, travel as their bytes
// in memory instead, exactly (NaN payloads too), with no encoding.
//
// fn's ctx ends when the call that submitted the task is abandoned (its
// ctx ended, another of its tasks failed for good, or Terminate; on Linux,
// where the pool tells the worker with real-time signal 41, which task
// functions should leave alone), and when the worker process is being
// stopped (SIGTERM, SIGINT, its parent's death). A task that honours it
// stops early; its result is dropped. TaskTimeout does not cancel it: it
// kills the worker.
//
// A task may run more than once for one input: a worker that dies after
// running it and before the pool has its result makes the pool run it
// again (the caller still gets one result). Make tasks idempotent, or
// make a repeat harmless.
//
// DefineTask does not panic: if fn is nil, name is empty or taken, or In
// or Out cannot travel, the Task records an error wrapping
// [ErrInvalidFunc], which [Task.Err] and NewPool return.
func DefineTask[In, Out any](name string, fn func(ctx context.Context, in In) (Out, error)) *Task[In, Out] {
	t := &Task[In, Out]{name: name, fn: fn, ins: codecOf[In](), outs: codecOf[Out]()}
	switch {
	case name == "":
		t.err = fmt.Errorf("%w: empty task name", ErrInvalidFunc)
	case fn == nil:
		t.err = fmt.Errorf("%w: task %s is a nil function", ErrInvalidFunc, name)
	}
	for _, p := range []reflect.Type{reflect.TypeFor[In](), reflect.TypeFor[Out]()} {
		if t.err != nil {
			break
		}
		if why := unfitValue(p); why != "" {
			t.err = fmt.Errorf("%w: task %s: type %v: %s", ErrInvalidFunc, name, p, why)
		}
	}
	if t.err != nil {
		return t
	}
	t.work = Define(taskPrefix+name, func(ctx context.Context, tasks, results *mpq.Queue, b *os.File, cfg workerConfig) error {
		return t.serve(ctx, tasks, results, b, cfg)
	})
	t.err = t.work.Err()
	return t
}

// taskPrefix keeps the names of tasks' worker functions apart from those
// of Define.
const taskPrefix = "task:"

// unfitValue says why a value of type p cannot travel as a task's input
// or output, or returns "".
func unfitValue(p reflect.Type) string {
	switch {
	case p == queueType || p == connType || p == fileType:
		return "a task's input and output are plain values; pass queues, conns and files to Init"
	case p.Kind() == reflect.Interface:
		return "a plain value needs a concrete type"
	}
	if why := unfit(p); why != "" || flat(p) {
		return why // a fixed-size value travels as its bytes
	}
	return uncodable(p)
}

// uncodable says what in a value of type t CBOR cannot encode, or returns
// "".
func uncodable(t reflect.Type) string {
	return within(t, func(t reflect.Type) string {
		switch t.Kind() {
		case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
			return fmt.Sprintf("it holds a %v, which cannot be encoded as CBOR", t)
		}
		return ""
	})
}

// Name returns the name the task was defined with.
func (t *Task[In, Out]) Name() string { return t.name }

// String returns "proc.Task(name)".
func (t *Task[In, Out]) String() string { return "proc.Task(" + t.name + ")" }

// Err returns the error that made DefineTask refuse the task (wrapping
// [ErrInvalidFunc]), or nil.
func (t *Task[In, Out]) Err() error { return t.err }

// workerConfig is what a worker process is told, besides its queues and
// board.
type workerConfig struct {
	Slot     int       // its slot on the board
	MaxTasks int       // exit after that many tasks (after the chunk that reaches it); 0 = never
	Timed    bool      // write when each task starts (TaskTimeout)
	Init     string    // the Func to run first, "" for none
	InitArgs []wireArg // its arguments
}

// serve is a worker process: it runs Init, says it is ready, then runs
// chunks of tasks until the tasks queue is sealed and drained.
func (t *Task[In, Out]) serve(ctx context.Context, tasks, results *mpq.Queue, bf *os.File, cfg workerConfig) error {
	b, err := openBoard(bf, cfg.Slot)
	if err != nil {
		return err
	}
	defer b.close()
	w := &taskWorker[In, Out]{t: t, tasks: tasks, results: results, b: b, s: b.slot(cfg.Slot), cfg: cfg,
		maxReport: results.Stats().MaxMessage, pid: os.Getpid()}
	atomic.StoreUint32(w.s.pid, uint32(w.pid))
	if sigAbandoned != 0 {
		// Before the first chunk: the pool signals only a worker that
		// runs one, and the signal's default action would kill it.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, sigAbandoned)
		defer signal.Stop(sigs)
		go func() {
			for range sigs {
				w.signalled()
			}
		}()
	}
	if cfg.Init != "" {
		if err := runInit(ctx, cfg); err != nil {
			return fmt.Errorf("Init %s: %w", cfg.Init, err)
		}
	}
	atomic.StoreUint32(w.s.ready, 1)
	if err := results.Put(ctx, appendReportHead(nil, reportHead{kind: reportReady, slot: cfg.Slot, pid: w.pid})); err != nil {
		return err
	}
	for {
		d, err := tasks.Receive(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.chunk(ctx, d); err != nil {
			return err
		}
		if cfg.MaxTasks > 0 && w.done >= cfg.MaxTasks {
			return nil
		}
	}
}

// runInit runs the pool's Init function in this worker.
func runInit(ctx context.Context, cfg workerConfig) error {
	f := lookup(cfg.Init)
	if f == nil || f.err != nil {
		return fmt.Errorf("%w: %q is not defined in this program (by a package-level proc.Define)", ErrUnknownFunc, cfg.Init)
	}
	if err := f.arity(len(cfg.InitArgs)); err != nil {
		return err
	}
	if current == nil {
		return errors.New("not a child process started by proc")
	}
	in := []reflect.Value{reflect.ValueOf(ctx)}
	for i, w := range cfg.InitArgs {
		v, err := current.open(w, f.param(i))
		if err != nil {
			return fmt.Errorf("%w: argument %d: %v", ErrInvalidArgs, i+1, err)
		}
		in = append(in, v)
	}
	out := f.fn.Call(in)
	if len(out) == 1 && !out[0].IsNil() {
		return out[0].Interface().(error)
	}
	return nil
}

// A taskWorker runs chunks of tasks in a worker process.
type taskWorker[In, Out any] struct {
	t              *Task[In, Out]
	tasks, results *mpq.Queue
	b              *board
	s              slot
	cfg            workerConfig
	maxReport      int
	pid            int
	done           int // tasks run

	mu      sync.Mutex
	call    uint64             // the call of the chunk running
	abandon context.CancelFunc // cancels its tasks' ctx; nil between chunks
}

// running returns the ctx of the tasks of a chunk of call, which the pool's
// signal (sigAbandoned) cancels once it has abandoned call; stop ends it.
func (w *taskWorker[In, Out]) running(ctx context.Context, call uint64) (context.Context, func()) {
	if sigAbandoned == 0 {
		return ctx, func() {}
	}
	tctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.call, w.abandon = call, cancel
	w.mu.Unlock()
	return tctx, func() {
		w.mu.Lock()
		w.abandon = nil
		w.mu.Unlock()
		cancel()
	}
}

// signalled cancels the running tasks if their call was abandoned: the
// pool's signal may come late, when another chunk runs.
func (w *taskWorker[In, Out]) signalled() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.abandon != nil && w.b.abandoned(w.call) {
		w.abandon()
	}
}

// chunk runs the chunk of tasks d holds, puts the results and acknowledges
// it.
func (w *taskWorker[In, Out]) chunk(ctx context.Context, d *mpq.Delivery) error {
	data := d.Data()
	id, call, n, err := chunkHead(data)
	if err != nil {
		return d.Ack() // not from the pool: nothing to run
	}
	if d.Count() > 1 {
		// Its holder died: the pool, which knows what the death cost,
		// decides what to run again.
		if err := w.results.Put(ctx, appendReportHead(nil, reportHead{kind: reportReturned, slot: w.cfg.Slot, chunk: id, pid: w.pid})); err != nil {
			return err
		}
		poolHook("returned")
		return ack(d)
	}
	if w.b.abandoned(call) {
		return w.skip(ctx, d, id)
	}
	poolHook("received")
	d.Extend(mpq.MaxLease) // only a death gives it back
	atomic.StoreUint32(w.s.phase, phaseIdle)
	atomic.StoreUint64(w.s.chunk, id)
	ins, err := w.t.ins.decode(data[chunkHeader:], n)
	var bad []error // by position: the input's own decoding refused it
	if err != nil {
		if ins, bad, err = w.t.ins.decodeEach(data[chunkHeader:], n); err != nil {
			return fmt.Errorf("proc: pool: chunk %d: cannot decode %d inputs: %v", id, n, err)
		}
	}
	outs := make([]Out, n)
	var fails []wireFail
	tctx, stop := w.running(ctx, call)
	defer stop()
	gen := w.b.gen()
	for i := range ins {
		if w.cfg.Timed {
			atomic.StoreInt64(w.s.started, 0)
		}
		atomic.StoreUint32(w.s.pos, uint32(i))
		if w.cfg.Timed {
			atomic.StoreInt64(w.s.started, monotonic())
		}
		atomic.StoreUint32(w.s.phase, phaseRunning)
		if bad != nil && bad[i] != nil {
			fails = append(fails, undecodable(i, "input", bad[i]))
		} else if f := w.run(tctx, ins[i], &outs[i]); f != nil {
			f.Pos = uint32(i)
			fails = append(fails, *f)
		}
		if g := w.b.gen(); g != gen {
			gen = g
			if w.b.abandoned(call) {
				w.idle()
				return w.skip(ctx, d, id)
			}
		}
	}
	atomic.StoreInt64(w.s.started, 0)
	atomic.StoreUint32(w.s.phase, phaseFinishing)
	if err := w.report(ctx, id, 0, outs, fails); err != nil {
		return err
	}
	w.done += n
	poolHook("reported")
	err = ack(d)
	w.idle()
	return err
}

// skip tells the pool that chunk id, of an abandoned call, is done with
// unrun (the pool then forgets it), and acknowledges it.
func (w *taskWorker[In, Out]) skip(ctx context.Context, d *mpq.Delivery, id uint64) error {
	if err := w.results.Put(ctx, appendReportHead(nil, reportHead{kind: reportSkipped, slot: w.cfg.Slot, chunk: id, pid: w.pid})); err != nil {
		return err
	}
	return ack(d)
}

// idle marks the slot as holding nothing.
func (w *taskWorker[In, Out]) idle() {
	atomic.StoreUint32(w.s.phase, phaseIdle)
	atomic.StoreUint64(w.s.chunk, 0)
}

// ack acknowledges d. A lease that ended (which only the pool's death, or
// a worker thought dead, causes) is not this worker's error.
func ack(d *mpq.Delivery) error {
	if err := d.Ack(); err != nil && !errors.Is(err, mpq.ErrLeaseExpired) {
		return err
	}
	return nil
}

// run runs one task, storing its result in out, and returns how it failed
// or nil.
func (w *taskWorker[In, Out]) run(ctx context.Context, in In, out *Out) (f *wireFail) {
	defer func() {
		if r := recover(); r != nil {
			f = &wireFail{Message: fmt.Sprint(r), Panic: true, Stack: string(debug.Stack())}
			if err, ok := r.(error); ok {
				f.Is = matches(err)
			}
		}
	}()
	v, err := w.t.fn(ctx, in)
	if err != nil {
		return &wireFail{Message: err.Error(), Is: matches(err)}
	}
	*out = v
	return nil
}

// report puts the results of tasks first.. of chunk id, in as many reports
// as the results queue's largest message takes. A single result too large
// for it fails its task.
func (w *taskWorker[In, Out]) report(ctx context.Context, id uint64, first int, outs []Out, fails []wireFail) error {
	var buf bytes.Buffer
	buf.Write(appendReportHead(nil, reportHead{kind: reportResults, slot: w.cfg.Slot, chunk: id, first: first, n: len(outs), pid: w.pid}))
	err := encodeResults(w.t.outs, &buf, outs, fails)
	if err == nil && buf.Len() <= w.maxReport {
		return w.results.Put(ctx, buf.Bytes())
	}
	if len(outs) > 1 {
		half := len(outs) / 2
		var lo, hi []wireFail
		for _, f := range fails {
			if int(f.Pos) < first+half {
				lo = append(lo, f)
			} else {
				hi = append(hi, f)
			}
		}
		if err := w.report(ctx, id, first, outs[:half], lo); err != nil {
			return err
		}
		poolHook("split")
		return w.report(ctx, id, first+half, outs[half:], hi)
	}
	why := fmt.Errorf("%w: its result takes %d bytes, more than the pool's results queue takes (%d); raise PoolOptions.Capacity", mpq.ErrTooLarge, buf.Len(), w.maxReport)
	if err != nil {
		why = fmt.Errorf("%w: its result: %v", mpq.ErrEncode, err)
	}
	var zero [1]Out
	return w.report(ctx, id, first, zero[:], []wireFail{{Pos: uint32(first), Message: why.Error(), Is: matches(why)}})
}

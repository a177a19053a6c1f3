package proc

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mpq-go/mpq"
)

// PoolOptions configure a [Pool]. A nil *PoolOptions means all defaults.
type PoolOptions struct {
	// Workers is the number of worker processes. Default
	// runtime.NumCPU().
	Workers int

	// MaxAttempts is how many times a task is tried before it fails for
	// good. An attempt fails when the task returns an error or panics, when
	// its worker dies while running it (killed by a signal, or exits), or
	// when it runs past TaskTimeout. A worker that dies while idle, or
	// after running its tasks and before the pool has their results, costs
	// no attempt: those tasks run again free. Default 3.
	MaxAttempts int

	// TaskTimeout, if positive, is how long one task may run: a task still
	// running after it has its worker killed (SIGKILL), which counts as a
	// failed attempt of that task, and the worker is replaced. The pool
	// checks every TaskTimeout/8 (at least every 100ms), so a task is
	// stopped between TaskTimeout and about 1.125 TaskTimeout after it
	// started. Default 0: no limit.
	TaskTimeout time.Duration

	// MaxTasksPerWorker, if positive, replaces a worker by a new process
	// once it has run that many tasks (Python's maxtasksperchild), after
	// the chunk that reaches the count: the pool never puts more tasks
	// than that in one chunk. Default 0: workers live as long as the pool.
	MaxTasksPerWorker int

	// Init, if set, runs once in each worker process before its first
	// task, with InitArgs as its arguments (as Python's initializer and
	// initargs): a function made by [Define], which may take queues,
	// conns, files and plain values as Start's arguments do. NewPool waits
	// until every worker has run it; an Init that fails (returns an error
	// or panics) fails NewPool with [ErrInitFailed], and a replacement
	// worker's failing Init closes the pool the same way.
	Init     *Func
	InitArgs []any

	// Capacity is the size in bytes of each of the pool's two queues (tasks
	// and results; see mpq.Options.Capacity), which bounds the tasks waiting
	// for a worker: Map and Submit wait while the tasks queue is full. A
	// chunk of tasks, or of results, larger than a quarter of it is split;
	// a single input or result larger than that fails its task. NewPool
	// refuses a Capacity too small for a zero result (a large array type).
	// Default 4 MiB.
	Capacity int

	// Proc configures the worker processes (environment, directory,
	// standard output and error, grace period); see [Options]. Detached is
	// refused: workers live and die with their pool.
	Proc *Options
}

// Defaults of PoolOptions.
const (
	DefaultMaxAttempts = 3
	defaultCapacity    = 4 << 20
	maxChunk           = 4096 // tasks in one chunk of Map
	streamChunk        = 256  // tasks in one chunk of Stream
	streamAhead        = 4    // Stream's chunks in flight per worker
)

// A Pool runs a [Task] in a set of worker processes of this program, as
// Python's multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor
// do, and survives its workers dying: a worker killed at any point, by any
// signal, is replaced, and the task it was running runs again on another;
// every other task, worker and call goes on. Results come back exactly
// once, even though a task may have run more than once (make tasks
// idempotent).
//
// Tasks travel to the workers through an anonymous queue in
// acknowledgement mode (see mpq.Queue.Receive), in chunks: a worker takes
// a chunk, runs its tasks, puts their results in a second queue, and only
// then acknowledges the chunk, so a chunk whose worker died is delivered
// again. A shared page on which each worker marks the task it runs tells
// the pool which task a death is charged to; that task is then run on its
// own, so one that kills its worker every time fails after MaxAttempts
// with the signal named, and costs its neighbours nothing.
//
// A Pool's methods are safe for concurrent use by multiple goroutines.
type Pool[In, Out any] struct {
	task      *Task[In, Out]
	o         PoolOptions // resolved
	tasks     *mpq.Queue
	results   *mpq.Queue
	maxTask   int // largest task message
	board     *board
	stopCtx   func() bool // unregisters the watch on NewPool's ctx
	col       *collector
	collected chan struct{}  // closed when the background reader has stopped
	loops     sync.WaitGroup // the supervisor and the resubmitter
	deaths    chan *poolWorker
	resubmit  chan struct{}   // wakes the resubmitter
	life      context.Context // cancelled by Terminate
	kill      context.CancelFunc
	gone      chan struct{} // closed when every worker has exited, after Close or Terminate
	closeOnce sync.Once

	mu       sync.Mutex
	state    poolState
	ready    chan struct{} // closed when the first workers are ready (or init failed)
	nready   int           // slots whose worker has been ready at least once
	wasReady []bool        // by slot
	broken   error         // why the pool can run nothing (ErrInitFailed)
	calls    map[uint64]*call[In, Out]
	chunks   map[uint64]*chunk[In, Out]
	nextID   uint64
	workers  []*poolWorker // by slot; nil for a free slot
	alive    int
	pending  []*chunk[In, Out] // to be put again, by the resubmitter
	stats    PoolStats
	idle     *sync.Cond // signalled when the last call ends
	restarts []int      // slots waiting for a worker, after a failed start
}

type poolState int

const (
	poolOpen       poolState = iota
	poolClosing              // Close waits for the calls in flight
	poolSealed               // the tasks queue is sealed; workers exit
	poolTerminated           // Terminate: everything stops now
)

// PoolStats are a Pool's counters, from [Pool.Stats].
type PoolStats struct {
	Workers  int   // worker processes alive now
	Replaced int   // workers started to replace one that died or retired
	Done     int64 // tasks that returned a result
	Retried  int64 // failed attempts that were tried again
	Failed   int64 // tasks that failed for good
	InFlight int   // tasks submitted and not yet done, failed or abandoned
}

// A poolWorker is one worker process of a pool.
type poolWorker struct {
	slot     int
	p        *Process
	timedOut *mark    // what the slot said when TaskTimeout killed it
	returns  []uint64 // chunks given back while its death was not yet seen
}

// A call is one Map, Submit or Stream.
type call[In, Out any] struct {
	id       uint64
	outs     []Out  // Map and Submit
	settled  []bool // by task index
	open     int    // tasks submitted and not yet settled
	fails    map[int][]Attempt
	err      error         // why it ended early: a task failed for good, ctx, the pool
	done     chan struct{} // closed when it ends
	ended    bool
	stream   chan streamItem[Out] // Stream: each settled task
	chunks   map[uint64]bool      // its chunks in the table
	onBoard  bool                 // ended, and on the board's set of abandoned calls
	stopWait func() bool          // unregisters the watch on Submit's ctx
	// interrupt, if set, stops the goroutine that waits for the call while
	// it reads the results queue.
	interrupt func()
}

// streamItem is a settled task of a Stream.
type streamItem[Out any] struct {
	out Out
	err error
}

// A chunk is a run of tasks of one call, the unit of delivery.
type chunk[In, Out any] struct {
	id       uint64
	c        *call[In, Out]
	ins      []In
	idx      []int // the task index of each position; nil: base+position
	base     int
	reported []bool // positions a report covered (nil: none yet)
	nrep     int
	suspect  int // the position a death was charged to, or -1
}

// index returns the task index in its call of position pos.
func (k *chunk[In, Out]) index(pos int) int {
	if k.idx != nil {
		return k.idx[pos]
	}
	return k.base + pos
}

// NewPool starts a pool of worker processes that run task, and returns
// once every worker has started and run Init. opts may be nil.
//
// The pool lives until Close or Terminate, or until ctx is done, which
// terminates it. Like [Func.Start], NewPool needs a program that called
// [Main]. It fails with the task's error from DefineTask, an error wrapping
// mpq.ErrInvalidOptions for options out of range, ErrInvalidArgs for
// InitArgs that do not fit Init, [ErrInitFailed] when a worker's Init
// fails, and ctx.Err() if ctx ends first; it then leaves no process,
// descriptor or queue behind.
func NewPool[In, Out any](ctx context.Context, task *Task[In, Out], opts *PoolOptions) (*Pool[In, Out], error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	if task == nil {
		return nil, fmt.Errorf("%w: nil *Task", ErrInvalidFunc)
	}
	if task.err != nil {
		return nil, task.err
	}
	if err := task.work.startable(); err != nil {
		return nil, err
	}
	o, err := resolvePool(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Pool[In, Out]{
		task: task, o: o,
		col: newCollector(), collected: make(chan struct{}),
		deaths: make(chan *poolWorker, o.Workers), resubmit: make(chan struct{}, 1),
		gone:  make(chan struct{}),
		ready: make(chan struct{}), calls: map[uint64]*call[In, Out]{}, chunks: map[uint64]*chunk[In, Out]{},
		workers: make([]*poolWorker, o.Workers), wasReady: make([]bool, o.Workers),
	}
	p.idle = sync.NewCond(&p.mu)
	p.life, p.kill = context.WithCancel(context.Background())
	if err := p.open(); err != nil {
		return nil, err
	}
	go p.background()
	p.loops.Add(2)
	go p.supervise()
	go p.resubmitter()
	p.mu.Lock()
	for i := range p.workers {
		if err := p.startLocked(i); err != nil {
			p.mu.Unlock()
			p.Terminate()
			return nil, err
		}
	}
	p.mu.Unlock()
	select {
	case <-p.ready:
	case <-ctx.Done():
		p.Terminate()
		return nil, ctx.Err()
	}
	p.mu.Lock()
	broken := p.broken
	p.mu.Unlock()
	if broken != nil {
		p.Terminate()
		return nil, broken
	}
	p.stopCtx = context.AfterFunc(ctx, func() { p.Terminate() })
	return p, nil
}

// resolvePool checks opts and fills in the defaults.
func resolvePool(opts *PoolOptions) (PoolOptions, error) {
	var o PoolOptions
	if opts != nil {
		o = *opts
	}
	bad := func(format string, args ...any) (PoolOptions, error) {
		return PoolOptions{}, fmt.Errorf("%w: proc: PoolOptions."+format, append([]any{mpq.ErrInvalidOptions}, args...)...)
	}
	switch {
	case o.Workers < 0 || o.Workers > 128:
		return bad("Workers is %d; want 1 to 128, or 0 for one per CPU", o.Workers)
	case o.MaxAttempts < 0:
		return bad("MaxAttempts is %d; want at least 1, or 0 for %d", o.MaxAttempts, DefaultMaxAttempts)
	case o.TaskTimeout < 0:
		return bad("TaskTimeout is %v; want a positive duration, or 0 for no limit", o.TaskTimeout)
	case o.MaxTasksPerWorker < 0:
		return bad("MaxTasksPerWorker is %d; want a positive count, or 0 for no limit", o.MaxTasksPerWorker)
	case o.Capacity < 0:
		return bad("Capacity is %d; want a size in bytes, or 0 for 4 MiB", o.Capacity)
	case o.Proc != nil && o.Proc.Detached:
		return bad("Proc.Detached is set; a pool's workers live and die with it")
	case o.Init == nil && len(o.InitArgs) > 0:
		return bad("InitArgs has %d arguments but Init is nil", len(o.InitArgs))
	}
	if o.Init != nil {
		if err := o.Init.err; err != nil {
			return PoolOptions{}, fmt.Errorf("proc: PoolOptions.Init: %w", err)
		}
		if o.Init.late {
			return PoolOptions{}, fmt.Errorf("proc: PoolOptions.Init: %w: %q was defined after Main ran, so a worker never defines it; define it in a package-level variable", ErrUnknownFunc, o.Init.name)
		}
		if err := o.Init.arity(len(o.InitArgs)); err != nil {
			return PoolOptions{}, fmt.Errorf("proc: PoolOptions.Init: %w", err)
		}
	}
	if o.Workers == 0 {
		o.Workers = min(runtime.NumCPU(), 128)
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Capacity == 0 {
		o.Capacity = defaultCapacity
	}
	return o, nil
}

// open makes the pool's queues and board.
func (p *Pool[In, Out]) open() (err error) {
	qopts := func(what string) *mpq.Options {
		return &mpq.Options{Capacity: p.o.Capacity, Label: poolLabel(p.task.name, what)}
	}
	if p.tasks, err = mpq.New(qopts("tasks")); err != nil {
		return fmt.Errorf("proc: pool %s: tasks queue: %w", p.task.name, err)
	}
	if p.results, err = mpq.New(qopts("results")); err != nil {
		p.tasks.Close()
		return fmt.Errorf("proc: pool %s: results queue: %w", p.task.name, err)
	}
	if p.board, err = newBoard(p.o.Workers); err != nil {
		p.tasks.Close()
		p.results.Close()
		return fmt.Errorf("proc: pool %s: %w", p.task.name, err)
	}
	p.maxTask = p.tasks.Stats().MaxMessage
	// A worker reports a result too large as a failure with a zero
	// result: that report, with room for its message, must fit.
	var b bytes.Buffer
	b.Write(make([]byte, reportHeader))
	fail := []wireFail{{Message: strings.Repeat(" ", 512)}}
	if err := encodeResults(p.task.outs, &b, make([]Out, 1), fail); err == nil && b.Len() > p.results.Stats().MaxMessage {
		p.tasks.Close()
		p.results.Close()
		p.board.close()
		var z bytes.Buffer
		p.task.outs.encode(&z, make([]Out, 1))
		return fmt.Errorf("%w: proc: pool %s: a result of type %v takes %d bytes even when zero, too many for the results queue (messages up to %d bytes); raise PoolOptions.Capacity",
			mpq.ErrInvalidOptions, p.task.name, reflect.TypeFor[Out](), z.Len(), p.results.Stats().MaxMessage)
	}
	return nil
}

// poolLabel is the label of a pool's queue, "pool NAME: what", shown by
// mpq ls, top and stat: characters a label cannot hold become '_', and a
// long name is cut.
func poolLabel(name, what string) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return '_'
		}
		return r
	}, name)
	max := mpq.MaxLabel - len("pool : ") - len(what)
	for len(name) > max {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	return "pool " + name + ": " + what
}

// startLocked starts a worker in slot i.
func (p *Pool[In, Out]) startLocked(i int) error {
	p.board.slot(i).clear()
	cfg := workerConfig{Slot: i, MaxTasks: p.o.MaxTasksPerWorker, Timed: p.o.TaskTimeout > 0}
	a := &prepared{}
	defer a.release()
	for _, arg := range []struct {
		v any
		t reflect.Type
	}{{p.tasks, queueType}, {p.results, queueType}, {p.board.f, fileType}} {
		w, err := a.add(arg.v, arg.t)
		if err != nil {
			return fmt.Errorf("proc: pool %s: start a worker: %w", p.task.name, err)
		}
		a.args = append(a.args, w)
	}
	if f := p.o.Init; f != nil {
		cfg.Init = f.name
		for j, v := range p.o.InitArgs {
			w, err := a.add(v, f.param(j))
			if err != nil {
				return fmt.Errorf("%w: PoolOptions.InitArgs[%d] for %s: %v", ErrInvalidArgs, j, f.name, err)
			}
			cfg.InitArgs = append(cfg.InitArgs, w)
		}
	}
	w, err := a.add(cfg, reflect.TypeFor[workerConfig]())
	if err != nil {
		return fmt.Errorf("proc: pool %s: start a worker: %w", p.task.name, err)
	}
	a.args = append(a.args, w)
	proc, err := start(context.Background(), p.task.work, p.o.Proc, a)
	if err != nil {
		return err
	}
	pw := &poolWorker{slot: i, p: proc}
	p.workers[i] = pw
	p.alive++
	go func() {
		<-proc.Done()
		p.deaths <- pw
	}()
	return nil
}

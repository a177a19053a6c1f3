// Package proc starts functions of this program as child processes, as
// Python's multiprocessing.Process does, handing them queues, connections,
// files and plain values as arguments.
//
// # Basics
//
// A function that may run in a child process is defined by name in a
// package-level variable, and the program's main function starts with
// [Main]:
//
//	var writer = proc.Define("writer", func(ctx context.Context, q *mpq.Queue, n int) error {
//		for i := range n {
//			if err := q.Put(ctx, []byte(strconv.Itoa(i))); err != nil {
//				return err
//			}
//		}
//		return nil
//	})
//
//	func main() {
//		proc.Main() // in a child: runs the function and exits
//		q, err := mpq.New(nil)
//		...
//		p, err := writer.Start(ctx, q, 10)
//		...
//		err = p.Wait() // nil, or an *ExitError
//	}
//
// [Func.Start] runs the program again (the same binary, as moby's reexec
// does); in the child, Main finds the function by its name, opens the
// arguments and calls it. The handle, a [Process], gives the child's Pid, waits
// for it ([Process.Wait], [Process.Done]), stops it ([Process.Terminate],
// [Process.Kill]) and reports how it ended: nil, or an [*ExitError]
// holding the error the function returned, the value it panicked with and
// the stack, or the signal that killed it.
//
// # Arguments
//
// A *mpq.Queue, named or anonymous ([mpq.New]), is handed over as a file
// descriptor and opened in the child; so is a *mpq.Conn end (from
// [mpq.Pipe]); an *os.File is inherited. Other arguments are plain values,
// encoded as CBOR and decoded into the parameter's type. Start checks the
// number and type of the arguments against the function's parameters
// before it starts anything ([ErrInvalidArgs]). The arguments travel in a
// file the child inherits (a memfd on Linux), so their size is not limited
// by the command line or the environment. The child closes its queues,
// conns and files when the function returns; the parent closes the
// descriptors it made for the child as soon as it has started.
//
// As with Python's Pipe, a process that hands a Conn end to a child should
// Close its own copy: the peer sees io.EOF only when every copy of the end
// is closed or its process gone.
//
// # Pools
//
// A [Pool] runs a [Task] in a set of worker processes, as Python's
// multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor do:
//
//	var square = proc.DefineTask("square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		proc.Main()
//		p, err := proc.NewPool(ctx, square, &proc.PoolOptions{Workers: 4})
//		...
//		defer p.Close()
//		squares, err := p.Map(ctx, []int{1, 2, 3}) // in input order
//		f, err := p.Submit(ctx, 7)                  // then f.Wait(ctx)
//		for sq, err := range p.Stream(ctx, seq) {   // as they complete
//			...
//		}
//	}
//
// Unlike Python's pools, a pool survives its workers dying. A worker
// killed at any point, by any signal (or by [PoolOptions.TaskTimeout]), is
// replaced, and the task it was running runs again; every other task,
// worker and call goes on, and each result comes back exactly once. A task
// that kills its worker every time fails, after [PoolOptions.MaxAttempts],
// with a [*TaskError] naming its index and how each attempt ended (the
// error it returned, the value it panicked with and the stack, the signal,
// the timeout); it stalls nothing else. Because a task may run more than
// once (its worker died after running it, before the pool had its
// result), tasks should be idempotent.
//
// Cancelling the ctx of Map or Submit returns at once (tens of
// microseconds) and abandons that call's tasks only. A pool's workers die
// with the process that made it, as every child of proc does. Close lets
// the calls in flight finish; Terminate stops everything at once; after
// either, no worker, zombie, descriptor, queue or goroutine is left.
//
// From Python, call by call:
//
//	Pool(n, initializer, initargs, maxtasksperchild)  NewPool(ctx, task, &PoolOptions{Workers, Init, InitArgs, MaxTasksPerWorker})
//	ProcessPoolExecutor(max_workers, ...)              the same
//	pool.map(f, xs), executor.map(f, xs)               p.Map(ctx, xs) (chunked as Pool.map is)
//	pool.imap_unordered(f, xs)                         p.Stream(ctx, seq)
//	pool.apply_async(f, (x,)), executor.submit(f, x)   p.Submit(ctx, x), then Future.Wait(ctx)
//	pool.close(); pool.join(), executor.shutdown()     p.Close()
//	pool.terminate()                                   p.Terminate()
//	(no equivalent)                                    p.Stats(), p.Pids()
//
// The function is named once, by DefineTask, rather than passed to each
// call, and Map, Submit and Stream take plain values (CBOR, or their bytes
// for fixed-size numbers; see [DefineTask]).
//
// # Stopping
//
// [Process.Terminate] sends SIGTERM, which the child turns into cancelling
// the function's context (as it does SIGINT, so that Ctrl-C at a terminal
// stops the children of the foreground process too). A function that
// ignores its context is made to exit when the grace period
// ([Options.Grace], default 5s) ends, or on a second signal. Cancelling the
// ctx given to Start terminates the child the same way (unless it is
// detached), and kills it with SIGKILL if it is still alive a second after
// the grace period.
// [Process.Kill] sends SIGKILL.
//
// # Guarantees
//
//   - A child whose parent dies is terminated as by Terminate (on Linux by
//     the kernel's parent-death signal; see Platform support), and a child
//     whose parent died before it started does not run its function.
//     [Options.Detached] children are exempt: they run in a session of
//     their own.
//   - Every child is reaped by a goroutine of the parent, whether or not
//     anyone calls Wait: none lingers as a zombie.
//   - No descriptor made for a child stays open in the parent (but see
//     Platform support), and none reaches the child's own children.
//   - A panic in the function, or in a goroutine it started, comes back
//     to the parent with its value and stack, and a fatal runtime error
//     with its stack (the runtime writes its message to the child's
//     standard error only).
//
// # Caveats
//
//   - Main must be the first thing main (or TestMain) does, and functions
//     must be defined before it runs: Start refuses with [ErrNoMain] in a
//     program that did not call Main, and with [ErrUnknownFunc] a function
//     defined after Main ran.
//   - The child is a new instance of the program, not a fork: only the
//     arguments travel, not the parent's memory. Package-level variables are
//     as the program's initialization leaves them.
//   - A child's standard input is the null device unless [Options.Stdin]
//     says otherwise, as in Python; its standard output and error are the
//     parent's.
//   - Start in a child process whose main did not call Main fails with
//     [ErrNoMain], rather than starting children without end.
//
// # Platform support
//
// Linux is the first-class platform: the kernel signals a child when its
// parent dies (PR_SET_PDEATHSIG, with real-time signal 40, which the child
// handles; a pool's worker also handles real-time signal 41, by which the
// pool cancels the running task of an abandoned call: functions should
// leave both signals alone), children are started
// through /proc/self/exe (so a program replaced on disk since it started
// still starts itself), and they read their arguments from a memfd. On
// other Unix systems, a child checks every 200ms whether its parent process
// is still the one that started it, and is terminated if not; arguments
// travel in an unlinked temporary file. There, a queue handed to a child
// keeps one duplicate descriptor open in the parent until the Queue is
// garbage collected, because closing a descriptor of a queue file would
// drop the parent's locks on it (see package mpq).
package proc

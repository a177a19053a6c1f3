package proc

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Errors of a [Pool]. Test for them with [errors.Is].
var (
	// ErrPoolClosed is returned by a Pool's Map, Submit and Stream after
	// Close or Terminate (or after the ctx given to NewPool ended), and by
	// those still waiting when Terminate ran.
	ErrPoolClosed = errors.New("proc: pool closed")
	// ErrTaskFailed is matched by the [*TaskError] of a task that failed
	// for good: every attempt failed, or it could not be sent at all.
	ErrTaskFailed = errors.New("proc: task failed")
	// ErrTaskTimeout is matched by an [Attempt] that ran past
	// [PoolOptions.TaskTimeout]: the pool killed its worker.
	ErrTaskTimeout = errors.New("proc: task ran past the pool's TaskTimeout")
	// ErrInitFailed is returned by NewPool, and by every call of a pool
	// afterwards, when a worker's [PoolOptions.Init] failed (it returned
	// an error or panicked, or the worker exited before it was ready
	// other than by a signal): a pool whose workers cannot start cannot
	// run anything. The error says how Init failed.
	ErrInitFailed = errors.New("proc: pool worker Init failed")
)

// A TaskError reports a task that failed for good: each of its
// MaxAttempts attempts failed, or (Err) it could not be sent to a worker at
// all. It matches [ErrTaskFailed], each attempt's errors (see [Attempt]),
// and Err.
type TaskError struct {
	Task string // the task's name
	// Index is the task's position: in Map's input, in Stream's sequence;
	// 0 for Submit.
	Index    int
	Attempts []Attempt // in the order they were made
	Err      error     // why the task could not be sent (Attempts is then empty)
}

// Error describes the task and each attempt: "proc: task square #17 failed
// after 3 attempts: 1: pid 12: worker killed by signal killed; 2: ...", or
// "proc: task square #17 could not be sent: ..." and Err.
func (e *TaskError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proc: task %s #%d ", e.Task, e.Index)
	if e.Err != nil {
		fmt.Fprintf(&b, "could not be sent: %v", e.Err)
		return b.String()
	}
	fmt.Fprintf(&b, "failed after %d attempts", len(e.Attempts))
	for i, a := range e.Attempts {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%d: %v", sep, i+1, a)
	}
	return b.String()
}

// Unwrap returns ErrTaskFailed, the attempts, and Err, for [errors.Is] and
// [errors.As].
func (e *TaskError) Unwrap() []error {
	errs := []error{ErrTaskFailed}
	for _, a := range e.Attempts {
		errs = append(errs, a)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// An Attempt is one failed run of a task, and says how it failed: the
// error the task returned, the value it panicked with and the stack, the
// signal that killed its worker, or the TaskTimeout it ran past. It is an
// error: [errors.Is] sees through it to the well-known errors the task's
// error matched (as for [ExitError]) and to [ErrTaskTimeout].
type Attempt struct {
	Pid     int    // the worker process
	Message string // the error, the panic value, or what the worker's death said
	Panic   bool   // the task (or a goroutine it started) panicked
	Stack   string // the panicking goroutine's stack
	// Signal is the signal that killed the worker while it ran the task, or
	// 0.
	Signal syscall.Signal
	// Exited is the worker's exit status when it exited while running the
	// task (os.Exit, a fatal runtime error), or 0.
	Exited int
	// Timeout is the TaskTimeout the task ran past, or 0: the pool killed
	// its worker.
	Timeout time.Duration

	is []error
}

// Error describes the attempt: "pid 12: worker killed by signal killed",
// "pid 12: worker exited with status 7", "pid 12: panic: boom", "pid 12:
// ran past TaskTimeout 1s; its worker was killed", or the task's error
// after the pid.
func (a Attempt) Error() string {
	p := fmt.Sprintf("pid %d: ", a.Pid)
	switch {
	case a.Timeout > 0:
		return p + fmt.Sprintf("ran past TaskTimeout %v; its worker was killed", a.Timeout)
	case a.Panic:
		return p + "panic: " + a.Message
	case a.Signal != 0 && a.Message != "":
		return p + "worker killed by signal " + a.Signal.String() + ": " + a.Message
	case a.Signal != 0:
		return p + "worker killed by signal " + a.Signal.String()
	case a.Exited != 0 && a.Message != "":
		return p + fmt.Sprintf("worker exited with status %d: %s", a.Exited, a.Message)
	case a.Exited != 0:
		return p + fmt.Sprintf("worker exited with status %d", a.Exited)
	default:
		return p + a.Message
	}
}

// Unwrap returns the well-known errors the task's error matched, and
// ErrTaskTimeout for a timeout.
func (a Attempt) Unwrap() []error {
	if a.Timeout > 0 {
		return append([]error{ErrTaskTimeout}, a.is...)
	}
	return a.is
}

// failAttempt is the attempt a task's returned error or panic makes.
func failAttempt(pid int, f wireFail) Attempt {
	return Attempt{Pid: pid, Message: f.Message, Panic: f.Panic, Stack: f.Stack, is: matched(f.Is)}
}

// deathAttempt is the attempt a worker's death while it ran the task
// makes.
func deathAttempt(pid int, err error) Attempt {
	if err == nil {
		return Attempt{Pid: pid, Message: "worker exited with status 0 while running the task"}
	}
	a := Attempt{Pid: pid, Message: fmt.Sprint(err)}
	var e *ExitError
	if errors.As(err, &e) {
		a = Attempt{Pid: e.Pid, Message: e.Message, Panic: e.Panic, Stack: e.Stack, Signal: e.Signal, is: e.is}
		if e.Signal == 0 {
			a.Exited = e.Code
		}
	}
	return a
}

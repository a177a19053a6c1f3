package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/shm"
)

// Errors returned by [Func.Start] and [Func.Err], and matched by the
// *ExitError that [Process.Wait] returns. Test for them with [errors.Is]:
// they are wrapped with details.
var (
	// ErrInvalidFunc is returned by Start (and Func.Err) for a function that
	// Define refused: not a func(context.Context, ...) error or
	// func(context.Context, ...), a parameter type that cannot be passed to
	// another process, an empty name, or a name defined twice.
	ErrInvalidFunc = errors.New("proc: invalid function")
	// ErrUnknownFunc is returned by Start for a function defined after
	// [Main] ran (a child process runs Main before it could define it), and
	// wrapped by the *ExitError of a child that did not know the function
	// it was asked to run.
	ErrUnknownFunc = errors.New("proc: unknown function")
	// ErrInvalidArgs is returned by Start when the arguments do not match
	// the function's parameters: their number, or the type of one of them.
	// Nothing is started.
	ErrInvalidArgs = errors.New("proc: invalid arguments")
	// ErrNoMain is returned by Start in a program that has not called
	// [Main]: the child would run the program's main function instead of
	// the function it was started for.
	ErrNoMain = errors.New("proc: Main was not called at the start of main (or TestMain)")
)

// Exit codes of a child process started by [Func.Start].
const (
	// ExitFailed is the exit code of a child whose function returned an
	// error.
	ExitFailed = 1
	// ExitPanic is the exit code of a child whose function panicked, as
	// for any Go program that panics.
	ExitPanic = 2
	// ExitSetup is the exit code of a child that could not run its
	// function: its arguments could not be read or opened, the function is
	// unknown, the function called runtime.Goexit, or its parent was gone
	// before it started.
	ExitSetup = 3
)

// An ExitError reports a child process that did not end successfully: its
// function returned an error or panicked, or the process exited with a
// nonzero status or was killed by a signal.
//
// [errors.Is] sees through an ExitError to the well-known errors the
// child's error matched there: [context.Canceled],
// [context.DeadlineExceeded], [io.EOF], [io.ErrUnexpectedEOF],
// [fs.ErrNotExist], [fs.ErrExist], [fs.ErrPermission], [ErrUnknownFunc],
// [ErrInvalidArgs] and the errors of package mpq ([mpq.ErrClosed],
// [mpq.ErrSealed], [mpq.ErrPeerClosed]...). Other errors travel as their
// message only.
type ExitError struct {
	Func string // the function's name
	Pid  int    // the child's process ID
	// Code is the exit status: [ExitFailed] when the function returned an
	// error, [ExitPanic] when it panicked, [ExitSetup] when it could not
	// run; -1 when the process was killed by a signal.
	Code int
	// Signal is the signal that killed the process, or 0 if it exited.
	Signal syscall.Signal
	// Message is the error the function returned, the value it panicked
	// with, the runtime's fatal error, or why the process was made to
	// exit; "" when the child said nothing (it called os.Exit, or was
	// killed from outside).
	Message string
	// Panic reports whether the function (or a goroutine it started)
	// panicked; Message is then the panic value.
	Panic bool
	// Stack is the stack trace of the panicking goroutine (or the
	// runtime's report of a fatal error).
	Stack string

	is []error // the well-known errors the child's error matched
}

// Error describes the failure: "proc writer (pid 123): panic: boom",
// "proc writer (pid 123): killed by signal killed", "proc writer (pid 123):
// exit status 3", or the function's error message after the prefix.
func (e *ExitError) Error() string {
	prefix := fmt.Sprintf("proc %s (pid %d): ", e.Func, e.Pid)
	switch {
	case e.Panic:
		return prefix + "panic: " + e.Message
	case e.Signal != 0 && e.Message != "":
		return prefix + "killed by signal " + e.Signal.String() + ": " + e.Message
	case e.Signal != 0:
		return prefix + "killed by signal " + e.Signal.String()
	case e.Message != "":
		return prefix + e.Message
	default:
		return prefix + fmt.Sprintf("exit status %d", e.Code)
	}
}

// Unwrap returns the well-known errors that the child's error matched (see
// [ExitError]), for [errors.Is].
func (e *ExitError) Unwrap() []error { return e.is }

// wellKnown are the errors whose identity crosses the process boundary: the
// child sends the indexes of those its error matches. Parent and child are
// the same binary, so the indexes agree; append only all the same.
var wellKnown = []error{
	context.Canceled,
	context.DeadlineExceeded,
	io.EOF,
	io.ErrUnexpectedEOF,
	fs.ErrNotExist,
	fs.ErrExist,
	fs.ErrPermission,
	ErrUnknownFunc,
	ErrInvalidArgs,
	mpq.ErrFull,
	mpq.ErrEmpty,
	mpq.ErrTooLarge,
	mpq.ErrSealed,
	mpq.ErrClosed,
	mpq.ErrCorrupt,
	mpq.ErrIncompatible,
	mpq.ErrInvalidOptions,
	mpq.ErrTooManyProcesses,
	mpq.ErrPeerClosed,
	mpq.ErrWrongDirection,
	mpq.ErrEncode,
	mpq.ErrDecode,
	mpq.ErrNoSpace,
	mpq.ErrTooManyFiles,
	mpq.ErrNoMemory,
	mpq.ErrReadOnly,
}

// startError is the error of a Start of name that failed to do what.
func startError(name, what string, err error) error {
	if e := shm.ExplainLimit(what, err); e != nil {
		return fmt.Errorf("proc: start %s: %w", name, e)
	}
	return fmt.Errorf("proc: start %s: %s: %w", name, what, err)
}

// matches returns the indexes in wellKnown of the errors err matches.
func matches(err error) []int {
	var is []int
	if err == nil {
		return nil
	}
	for i, k := range wellKnown {
		if errors.Is(err, k) {
			is = append(is, i)
		}
	}
	return is
}

// matched returns the well-known errors of the indexes is.
func matched(is []int) []error {
	var errs []error
	for _, i := range is {
		if i >= 0 && i < len(wellKnown) {
			errs = append(errs, wellKnown[i])
		}
	}
	return errs
}

package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/mpq-go/mpq/internal/shm"
)

// Main runs the function of a child process started by [Func.Start], then
// exits; in any other process it returns at once. Call it first in main,
// and first in TestMain for tests that start child processes:
//
//	func main() {
//		proc.Main()
//		...
//	}
//
//	func TestMain(m *testing.M) {
//		proc.Main()
//		os.Exit(m.Run())
//	}
//
// In a child, Main reads the arguments from the parent, opens the queues,
// conns and files among them, and calls the function with a context that
// is cancelled on SIGTERM or SIGINT (see [Process.Terminate]) and when the
// parent dies. When the function returns (or panics) Main closes what it
// opened, reports the outcome to the parent, and exits: with status 0 if
// the function returned nil, [ExitFailed] if it returned an error,
// [ExitPanic] if it panicked, [ExitSetup] if it could not run it.
//
// Main must run after the package-level variables of the program are set,
// which hold the functions made by [Define]: call it from main or
// TestMain, not from an init function.
func Main() {
	mainCalled.Store(true)
	token, ok := os.LookupEnv(envChild)
	if !ok {
		return
	}
	os.Unsetenv(envChild) // the function's own children are not ours
	runChild(token)
}

// child is the state of a child process running its function.
type child struct {
	out     *os.File // the result pipe
	exitMu  sync.Mutex
	closers []func() error // what to close after the function, in reverse
}

// current is this process's child state, if it is a child: a pool's
// worker opens its Init's arguments with it.
var current *child

// onClose records a Close to run when the function has returned.
func (c *child) onClose(f func() error) { c.closers = append(c.closers, f) }

// closeAll runs the recorded Closes, last first.
func (c *child) closeAll() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	c.closers = nil
}

// runChild runs the function the parent asked for, and exits.
func runChild(token string) {
	syscall.CloseOnExec(payloadFD)
	syscall.CloseOnExec(resultFD)
	c := &child{out: os.NewFile(resultFD, "proc-result")}
	current = c
	pl, err := readPayload(token)
	if err != nil {
		// Not started by Start as we know it: say so where someone looks.
		fmt.Fprintf(os.Stderr, "proc: pid %d: %v\n", os.Getpid(), err)
		os.Exit(ExitSetup)
	}
	// A fatal panic in another goroutine, or a fatal runtime error, is
	// reported to the parent too.
	debug.SetCrashOutput(c.out, debug.CrashOptions{})
	ctx := c.watch(pl)
	// After watch, so that a parent dying in between is not missed.
	if pl.Parent != 0 && os.Getppid() != pl.Parent {
		c.setupFailed(fmt.Errorf("parent process %d exited before %s started", pl.Parent, pl.Func))
	}
	f := lookup(pl.Func)
	if f == nil || f.err != nil {
		c.setupFailed(fmt.Errorf("%w: %q is not defined in this program (by a package-level proc.Define)", ErrUnknownFunc, pl.Func))
	}
	if err := f.arity(len(pl.Args)); err != nil {
		c.setupFailed(err)
	}
	in := []reflect.Value{reflect.ValueOf(ctx)}
	for i, w := range pl.Args {
		v, err := c.open(w, f.param(i))
		if err != nil {
			c.closeAll()
			if e := shm.ExplainLimit(fmt.Sprintf("open argument %d of %s", i+1, f.name), err); e != nil {
				c.setupFailed(e) // out of descriptors or memory: not the argument's fault
			}
			c.setupFailed(fmt.Errorf("%w: argument %d of %s: %v", ErrInvalidArgs, i+1, f.name, err))
		}
		in = append(in, v)
	}
	c.call(f, in)
}

// readPayload reads and checks what the parent sent.
func readPayload(token string) (*payload, error) {
	pf := os.NewFile(payloadFD, "proc-payload")
	if pf == nil {
		return nil, errors.New("no payload descriptor")
	}
	defer pf.Close()
	data, err := io.ReadAll(io.LimitReader(pf, maxPayload))
	if err != nil {
		return nil, fmt.Errorf("read the payload from the parent: %w", err)
	}
	var pl payload
	if err := decMode.Unmarshal(data, &pl); err != nil {
		return nil, fmt.Errorf("decode the payload from the parent: %w", err)
	}
	if pl.Token != token {
		return nil, fmt.Errorf("%s is set but descriptor %d is not from the parent", envChild, payloadFD)
	}
	return &pl, nil
}

// call runs the function and exits with its outcome.
func (c *child) call(f *Func, in []reflect.Value) {
	var out []reflect.Value
	returned := false
	defer func() {
		r := recover()
		var res result
		code := 0
		switch {
		case returned:
			if len(out) == 1 && !out[0].IsNil() {
				err := out[0].Interface().(error)
				res = result{Outcome: outError, Message: err.Error(), Is: matches(err)}
				code = ExitFailed
			}
		case r != nil:
			res = result{Outcome: outPanic, Message: fmt.Sprint(r), Stack: string(debug.Stack())}
			if err, ok := r.(error); ok {
				res.Is = matches(err)
			}
			code = ExitPanic
		default:
			res = result{Outcome: outSetup, Message: "the function called runtime.Goexit"}
			code = ExitSetup
		}
		c.closeAll()
		c.exit(res, code, 0)
	}()
	out = f.fn.Call(in)
	returned = true
}

// setupFailed reports that the function could not run, and exits.
func (c *child) setupFailed(err error) {
	c.exit(result{Outcome: outSetup, Message: err.Error(), Is: matches(err)}, ExitSetup, 0)
}

// exit reports res to the parent and exits with code, or dies of sig if it
// is not nil. The first caller exits; any other waits for that.
func (c *child) exit(res result, code int, sig syscall.Signal) {
	c.exitMu.Lock() // never unlocked
	if data, err := encMode.Marshal(res); err == nil {
		c.out.Write(append(resultMagic[:len(resultMagic):len(resultMagic)], data...))
	}
	if sig != 0 {
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second) // the signal is on its way
	}
	os.Exit(code)
}

// watch returns the function's context, which it cancels on SIGTERM or
// SIGINT or when the parent dies (unless the child is detached), and
// enforces the grace period after that.
func (c *child) watch(pl *payload) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	orphaned := make(chan struct{})
	if pl.Parent != 0 {
		watchParent(pl.Parent, orphaned)
	}
	grace := time.Duration(pl.Grace)
	go func() {
		var sig syscall.Signal
		var why string
		select {
		case s := <-sigs:
			sig = s.(syscall.Signal)
			why = "received signal " + sig.String()
		case <-orphaned:
			sig, why = syscall.SIGTERM, "parent process exited"
		}
		cancel(errors.New("proc: " + why))
		var timeout <-chan time.Time
		if grace >= 0 {
			timeout = time.After(grace)
		}
		select {
		case s := <-sigs:
			c.exit(result{Outcome: outKilled, Message: fmt.Sprintf("%s, then signal %v before the function returned", why, s)}, ExitSetup, s.(syscall.Signal))
		case <-timeout:
			c.exit(result{Outcome: outKilled, Message: fmt.Sprintf("%s; the function did not return within %v", why, grace)}, ExitSetup, sig)
		}
	}()
	return ctx
}

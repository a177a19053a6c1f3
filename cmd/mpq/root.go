package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

// Exit codes, also listed in the root command's help.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitMissing = 3 // the queue does not exist
	exitTimeout = 4 // nothing arrived (or no room) within --timeout
	exitSealed  = 5 // the queue is sealed (get: and drained)
)

// exitError is an error with the exit status it calls for. Its message is
// printed as "mpq: MESSAGE".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail returns an error that makes mpq exit with code.
func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// usage returns a usage error (exit status 2).
func usage(format string, args ...any) error { return fail(exitUsage, format, args...) }

// env is what every command reads and writes besides its flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	dir            string        // --dir, or $MPQ_DIR, or "" for the library's default
	envDir         string        // $MPQ_DIR
	timeout        time.Duration // the root's --timeout, for commands without one of their own

	// stop ends the command's context, with the cause: a signal
	// (*signalError) or the root's --timeout (*timeoutError).
	stop context.CancelCauseFunc
}

// queueDir is the directory named queues are in: what the user chose, or
// the library's default.
func (e *env) queueDir() string {
	if e.dir != "" {
		return e.dir
	}
	return mpq.DefaultDir()
}

// dirArg is " --dir DIR" when the user chose a directory on the command
// line, for the commands that error messages suggest.
func (e *env) dirArg() string {
	if e.dir != "" && e.dir != e.envDir {
		return " --dir " + e.dir
	}
	return ""
}

// opts are the Options that reach the queues of --dir.
func (e *env) opts() *mpq.Options { return &mpq.Options{Dir: e.dir} }

// checkDir refuses a --dir (or $MPQ_DIR) that is a queue URL, not a
// directory: no command makes a directory named "nats:" out of it.
func (e *env) checkDir() error {
	if e.dir == "" || !looksLikeURL(e.dir) {
		return nil
	}
	from := "--dir " + e.dir
	if e.dir == e.envDir {
		from = "$MPQ_DIR=" + e.dir
	}
	d := mpq.RedactURL(e.dir)
	if strings.HasPrefix(strings.ToLower(d), "shm:") {
		return usage("%s is a queue URL, not a directory; give the directory as --dir DIR, or the queue as shm:NAME?dir=DIR in place of its name", mpq.RedactURL(from))
	}
	return usage("%s is a URL, not a directory; a queue on a server is named by its URL in place of the queue name, as in: mpq stat %s/NAME (ls, create, rm, gc, top and serve work on directories only)",
		mpq.RedactURL(from), strings.TrimSuffix(d, "/"))
}

// A signalError is why a command's context ends when a signal arrives.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "interrupted by " + signalName(e.sig) }

// code is the exit status, 128+N as shells report a signal: 130 for
// SIGINT, 143 for SIGTERM.
func (e *signalError) code() int { return 128 + int(e.sig) }

// A timeoutError is why a command's context ends when the root's
// --timeout passes.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("timed out after %v (--timeout)", e.d) }

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// windUp is how long a command has to return once its context has ended
// (a signal, --timeout): one stuck in a call that cannot be interrupted is
// left behind, and mpq exits.
const windUp = time.Second

// run runs mpq with args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, dir: os.Getenv("MPQ_DIR"), envDir: os.Getenv("MPQ_DIR")}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// A write to a closed pipe then fails with EPIPE, which get reports,
	// instead of killing mpq with SIGPIPE. (Notify, unlike Ignore, is not
	// inherited by the processes mpq starts.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	e.stop = stop
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case sig := <-sigs:
			// After the first signal, the next one kills as usual: a
			// command slow to wind up can still be stopped.
			signal.Stop(sigs)
			stop(&signalError{sig: sig.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done:
		case <-time.After(windUp):
			// Stuck where no context reaches (a call of the library
			// that takes none): give up on it, as the signal asked.
			err = fmt.Errorf("%w; the command was still busy %v later, in a call that cannot be interrupted: exiting", context.Cause(ctx), windUp)
		}
	}
	if err == nil {
		return exitOK
	}
	code := exitFailure
	cause := context.Cause(ctx)
	msg := clean(err)
	var ee *exitError
	var se *signalError
	var te *timeoutError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(cause, &se) && (errors.Is(err, context.Canceled) || errors.As(err, &se)):
		code = se.code()
		msg = strings.ReplaceAll(msg, context.Canceled.Error(), se.Error())
	case errors.As(cause, &te) && (errors.Is(err, context.Canceled) || errors.As(err, &te)):
		code = exitTimeout
		msg = strings.ReplaceAll(msg, context.Canceled.Error(), te.Error())
	case errors.Is(err, context.Canceled):
		code = 130 // interrupted, as shells report SIGINT
	}
	// Errors of the library start with "mpq: " too: say it once.
	fmt.Fprintf(stderr, "mpq: %s\n", msg)
	if code == exitUsage {
		fmt.Fprintf(stderr, "Run 'mpq --help' for usage.\n")
	}
	return code
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "mpq",
		Short: "Inspect, operate and benchmark mpq queues",
		Long: `mpq works with the named queues of the mpq Go library: queues between
processes, in shared memory (or on disk when durable).

Queues live in one directory: --dir, else $MPQ_DIR, else the library's
per-user default (` + mpq.DefaultDir() + ` here). Put, get, seal and stat
also take a queue URL for NAME, as mpq.OpenURL does: shm:NAME[?PARAMS], or
nats://HOST:PORT/NAME[?PARAMS] for the same queue on NATS JetStream; bench
takes nats://HOST:PORT to measure that backend.

Exit status: 0 success, 1 failure, 2 usage error, 3 the queue does not
exist, 4 timed out, 5 the queue is sealed.`,
		Example: `  mpq create jobs
  mpq put jobs 'first job' 'second job'
  mpq get jobs -n 2
  mpq ls
  mpq put nats://127.0.0.1:4222/jobs 'third job'`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.PersistentFlags().StringVar(&e.dir, "dir", e.dir, "queue directory (default $MPQ_DIR, else the per-user default)")
	root.PersistentFlags().DurationVar(&e.timeout, "timeout", 0, "give up after `DURATION`, with exit status 4 (0: no limit); top and serve stop then, with status 0")
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if err := e.checkDir(); err != nil {
			return err
		}
		if c.LocalFlags().Lookup("timeout") != nil {
			return nil // put and get: a --timeout of their own
		}
		if e.timeout < 0 {
			return usage("--timeout %v: want a positive duration, or 0 for no limit", e.timeout)
		}
		if e.timeout > 0 && e.stop != nil {
			d := e.timeout
			time.AfterFunc(d, func() { e.stop(&timeoutError{d: d}) })
		}
		return nil
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usage("%v", err) })
	for _, add := range commands {
		root.AddCommand(add(e))
	}
	return root
}

// commands are the subcommands, each in the file named after it (put and
// seal in put.go, stat and ls in stat.go, rm in remove.go); help lists
// them sorted.
var commands = []func(*env) *cobra.Command{
	newCreateCmd, newPutCmd, newGetCmd, newSealCmd, newStatCmd, newLsCmd, newTopCmd,
	newRmCmd, newGcCmd, newServeCmd, newDemoCmd, newBenchCmd,
}

// exactArgs is cobra.ExactArgs giving a usage error that names what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usage("%s: want %s, got %d arguments", c.CommandPath(), what, len(args))
		}
		return nil
	}
}

// clean is err's message with the "mpq: " of the library's errors said
// once: mpq prefixes every message with it already.
func clean(err error) string {
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), ": mpq: ", ": "), "mpq: ")
}

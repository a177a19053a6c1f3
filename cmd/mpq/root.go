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

	"github.com/spf13/cobra"

	"mpq"
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
	dir            string // --dir, or $MPQ_DIR, or "" for the library's default
	envDir         string // $MPQ_DIR
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

// run runs mpq with args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, dir: os.Getenv("MPQ_DIR"), envDir: os.Getenv("MPQ_DIR")}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, the next one kills as usual: a command
		// slow to wind up can still be stopped.
		<-ctx.Done()
		stop()
	}()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	// Errors of the library start with "mpq: " too: say it once.
	fmt.Fprintf(stderr, "mpq: %s\n", clean(err))
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.code == exitUsage {
			fmt.Fprintf(stderr, "Run 'mpq --help' for usage.\n")
		}
		return ee.code
	}
	if errors.Is(err, context.Canceled) {
		return 130 // interrupted, as shells report SIGINT
	}
	return exitFailure
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
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usage("%v", err) })
	for _, add := range commands {
		root.AddCommand(add(e))
	}
	return root
}

// commands are the subcommands, each added by its file's init.
var commands []func(*env) *cobra.Command

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

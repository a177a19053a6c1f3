package proc

import (
	"io"
	"time"
)

// DefaultGrace is the grace period of a child process whose Options leave
// Grace zero.
const DefaultGrace = 5 * time.Second

// Options configure how a child process is started. A nil *Options means
// all defaults.
type Options struct {
	// Detached starts the child in a session of its own, free of this
	// process: it is not terminated when this process dies, nor when the
	// ctx given to Start is cancelled, and a Ctrl-C at the terminal does
	// not reach it. It is still this process's child while this process
	// lives: Wait, Terminate and Kill work as for any other. Default false.
	// Give a detached child files (or nil) as standard output and error:
	// the pipe behind any other io.Writer breaks when this process exits.
	Detached bool

	// Stdin is the child's standard input. The default, nil, is the null
	// device, as in Python's multiprocessing (so that parent and child do
	// not compete for a terminal); pass os.Stdin to share this process's.
	Stdin io.Reader

	// Stdout and Stderr are the child's standard output and error. The
	// defaults, nil, are this process's (os.Stdout and os.Stderr), as in
	// Python. An *os.File is handed to the child as it is; any other
	// io.Writer is fed from a pipe by a goroutine of this process, and Wait
	// returns once the pipe is drained (or one second after the child
	// exits, if a process it started keeps the pipe open).
	Stdout, Stderr io.Writer

	// Env is the child's environment, "KEY=value" entries. The default,
	// nil, is this process's environment.
	Env []string

	// Dir is the child's working directory. The default, "", is this
	// process's.
	Dir string

	// Grace is how long a child may keep running once its context is
	// cancelled (by [Process.Terminate], by SIGTERM or SIGINT from
	// elsewhere, by the death of this process, or by cancelling the ctx
	// given to Start) before it is made to exit: a function that ignores
	// its context then dies of the signal that asked it to stop (SIGTERM,
	// or SIGINT). A second SIGTERM or SIGINT makes it exit at once.
	// When the ctx given to Start is cancelled, this process also sends
	// SIGKILL if the child is still alive one second after Grace. Default
	// [DefaultGrace]; negative means no limit (only a second signal, or
	// Kill, ends a child whose function ignores its context).
	Grace time.Duration
}

// grace returns the effective grace period; negative means none.
func (o *Options) grace() time.Duration {
	if o == nil || o.Grace == 0 {
		return DefaultGrace
	}
	return o.Grace
}

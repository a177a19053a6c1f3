package proc

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mpq-go/mpq/internal/shm"
)

// A Process is a child process started by [Func.Start]. Its methods are safe
// for concurrent use by multiple goroutines, and may be called any number of
// times.
type Process struct {
	name     string
	pid      int
	cmd      *exec.Cmd
	grace    time.Duration
	report   []byte        // what the child wrote to the result pipe
	reported chan struct{} // closed when report is complete

	done chan struct{} // closed when the child has been reaped
	err  error         // what Wait returns; set before done is closed

	mu      sync.Mutex
	exited  bool
	stopCtx func() bool // unregisters the watch on Start's ctx
	killer  *time.Timer // SIGKILL after a cancelled ctx's grace period
}

// start starts the child process of f with the prepared arguments.
func start(ctx context.Context, f *Func, opts *Options, a *prepared) (*Process, error) {
	if opts == nil {
		opts = &Options{}
	}
	pl := payload{Token: rand.Text(), Func: f.name, Grace: int64(opts.grace()), Args: a.args}
	if !opts.Detached {
		pl.Parent = os.Getpid()
	}
	data, err := encMode.Marshal(pl)
	if err != nil {
		return nil, fmt.Errorf("proc: start %s: encode arguments: %w", f.name, err)
	}
	pf, err := payloadFile(data)
	if err != nil {
		return nil, startError(f.name, "arguments file", err)
	}
	defer pf.Close()
	rr, rw, err := os.Pipe()
	if err != nil {
		return nil, startError(f.name, "result pipe", err)
	}
	defer rw.Close()
	exe, err := executable()
	if err != nil {
		rr.Close()
		return nil, fmt.Errorf("proc: start %s: %w", f.name, err)
	}
	argv0 := exe
	if len(os.Args) > 0 {
		argv0 = os.Args[0]
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        []string{argv0},
		Dir:         opts.Dir,
		Env:         childEnv(opts.Env, pl.Token),
		Stdin:       opts.Stdin,
		Stdout:      opts.Stdout,
		Stderr:      opts.Stderr,
		ExtraFiles:  append([]*os.File{pf, rw}, a.files...),
		SysProcAttr: sysProcAttr(opts.Detached),
		WaitDelay:   time.Second,
	}
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		rr.Close()
		return nil, fmt.Errorf("proc: start %s: %w", f.name, cmp.Or(shm.ExplainLimit("start the child process", err), err))
	}
	p := &Process{
		name: f.name, pid: cmd.Process.Pid, cmd: cmd, grace: opts.grace(),
		reported: make(chan struct{}), done: make(chan struct{}),
	}
	go p.readReport(rr)
	go p.reap(rr)
	if !opts.Detached {
		p.mu.Lock()
		p.stopCtx = context.AfterFunc(ctx, p.cancelled)
		p.mu.Unlock()
	}
	return p, nil
}

// childEnv returns the child's environment: env (by default this
// process's) and the variable that makes it a child.
func childEnv(env []string, token string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, envChild+"=") {
			out = append(out, kv)
		}
	}
	return append(out, envChild+"="+token)
}

// readReport reads the result pipe to its end, keeping the first maxReport
// bytes.
func (p *Process) readReport(rr *os.File) {
	defer close(p.reported)
	var buf bytes.Buffer
	io.Copy(&capped{&buf, maxReport}, rr)
	rr.Close()
	p.report = buf.Bytes()
}

// capped is a writer that keeps the first n bytes written and drops the
// rest.
type capped struct {
	b *bytes.Buffer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// reap waits for the child to exit, then for its report, and records the
// outcome.
func (p *Process) reap(rr *os.File) {
	werr := p.cmd.Wait()
	// The report ends when the child exits, unless a process it started
	// inherited the pipe against the odds: do not wait for that one.
	rr.SetReadDeadline(time.Now().Add(time.Second))
	<-p.reported
	p.mu.Lock()
	p.exited = true
	if p.stopCtx != nil {
		p.stopCtx()
	}
	if p.killer != nil {
		p.killer.Stop()
	}
	p.mu.Unlock()
	p.err = p.outcome(werr)
	close(p.done)
}

// cancelled terminates the child when Start's ctx is done.
func (p *Process) cancelled() {
	p.Terminate()
	if p.grace < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		p.killer = time.AfterFunc(p.grace+time.Second, func() { p.Kill() })
	}
}

// outcome returns what Wait returns, given what exec.Cmd.Wait returned.
func (p *Process) outcome(werr error) error {
	ps := p.cmd.ProcessState
	if ps == nil {
		return fmt.Errorf("proc %s (pid %d): %w", p.name, p.pid, werr)
	}
	if ps.Success() {
		if werr != nil && !errors.Is(werr, exec.ErrWaitDelay) {
			// Copying its output to Stdout or Stderr failed.
			return fmt.Errorf("proc %s (pid %d): %w", p.name, p.pid, werr)
		}
		return nil
	}
	e := &ExitError{Func: p.name, Pid: p.pid, Code: ps.ExitCode()}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal()
	}
	res, crash := parseReport(p.report)
	switch {
	case crash != "" && (res == nil || res.Outcome == outOK):
		crashReport(e, crash)
	case res != nil:
		e.Message, e.Stack = res.Message, res.Stack
		e.Panic = res.Outcome == outPanic
		e.is = matched(res.Is)
	}
	return e
}

// Pid returns the child's process ID.
func (p *Process) Pid() int { return p.pid }

// Name returns the name of the function the child runs.
func (p *Process) Name() string { return p.name }

// String describes the child for logs: "proc writer (pid 123)".
func (p *Process) String() string { return fmt.Sprintf("proc %s (pid %d)", p.name, p.pid) }

// Wait waits for the child to exit and returns nil if its function
// returned nil, or else an *ExitError saying how it ended. It returns an
// error of another type only when the child's output could not be copied to
// a Stdout or Stderr writer that is not a file. Any number of goroutines
// may call Wait, any number of times: they all get the same result.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done returns a channel that is closed when the child has exited and been
// reaped; Wait then returns at once.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode returns the child's exit status: 0 on success, [ExitFailed],
// [ExitPanic] or [ExitSetup] (see there) or whatever the child passed to
// os.Exit; -1 while it runs or when a signal killed it.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Terminate asks the child to stop: it sends SIGTERM, which cancels the
// context of the child's function. A function that returns ctx.Err() then
// makes Wait return an *ExitError that matches [context.Canceled]. If the
// function has not returned when the grace period ([Options.Grace]) ends,
// or when a second Terminate arrives, the child exits anyway and Wait
// reports that it was killed by SIGTERM. A child that has not reached
// [Main] yet dies of the signal at once. Terminating a child that has
// exited does nothing and returns nil.
func (p *Process) Terminate() error { return p.Signal(syscall.SIGTERM) }

// Kill kills the child with SIGKILL: it stops at once, without running any
// more of its code. Wait then reports the signal, and ExitCode returns -1.
// Queues the child had open stay consistent (see package mpq). Killing a
// child that has exited does nothing and returns nil.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// Signal sends sig to the child. Sending a signal to a child that has
// exited does nothing and returns nil.
func (p *Process) Signal(sig os.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("proc: signal %v: %w", p, err)
	}
	return nil
}

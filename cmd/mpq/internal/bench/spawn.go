//go:build linux

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childEnv guards the child entry point: the harness binary (or its test
// binary) runs as a child only when this variable is set to 1.
const childEnv = "MPQ_BENCH_CHILD"

// A child is a copy of the harness running one role (see child.go). It
// prints "ready" once set up, starts when its stdin is closed, and prints
// one JSON result line when done.
type child struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	out    *bufio.Scanner
	stderr *tail
	waited bool
}

// spawn starts a child with args after "child", handing it files as
// descriptors 3, 4, ... It is killed when ctx is done.
func spawn(ctx context.Context, files []*os.File, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"child"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = files
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, stderr: &tail{}}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewScanner(stdout)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// line reads the child's next line of output.
func (c *child) line() (string, error) {
	if c.out.Scan() {
		return c.out.Text(), nil
	}
	err := c.wait()
	if err == nil {
		err = c.out.Err()
	}
	if err == nil {
		err = errors.New("exited early")
	}
	return "", c.fail(err)
}

// ready waits for the child to be set up.
func (c *child) ready() error {
	l, err := c.line()
	if err == nil && l != "ready" {
		err = c.fail(fmt.Errorf("said %q, want ready", l))
	}
	return err
}

// start lets the child begin its work.
func (c *child) start() error { return c.stdin.Close() }

// result reads the child's result line into v.
func (c *child) result(v any) error {
	l, err := c.line()
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(l), v); err != nil {
		return c.fail(fmt.Errorf("bad result %q: %w", l, err))
	}
	return nil
}

// wait waits for the child to exit, once.
func (c *child) wait() error {
	if c.waited {
		return nil
	}
	c.waited = true
	return c.cmd.Wait()
}

// fail describes a child's failure with the end of its stderr.
func (c *child) fail(err error) error {
	msg := strings.TrimSpace(c.stderr.String())
	if msg != "" {
		return fmt.Errorf("child %v: %w; stderr: %s", c.cmd.Args[1:], err, msg)
	}
	return fmt.Errorf("child %v: %w", c.cmd.Args[1:], err)
}

// A group runs children under one context and, in stop, kills and reaps
// those still running.
type group struct {
	ctx      context.Context
	cancel   context.CancelFunc
	children []*child
}

// newGroup returns a group whose children die when ctx is done or after
// timeout, whichever is first.
func newGroup(ctx context.Context, timeout time.Duration) *group {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return &group{ctx: ctx, cancel: cancel}
}

// spawn starts a child in the group.
func (g *group) spawn(files []*os.File, args ...string) (*child, error) {
	c, err := spawn(g.ctx, files, args...)
	if err != nil {
		return nil, err
	}
	g.children = append(g.children, c)
	return c, nil
}

// startAll waits until every child is ready, then lets them all start.
func (g *group) startAll() error {
	for _, c := range g.children {
		if err := c.ready(); err != nil {
			return err
		}
	}
	for _, c := range g.children {
		if err := c.start(); err != nil {
			return err
		}
	}
	return nil
}

// waitAll waits for every child to exit and reports the first failure.
func (g *group) waitAll() error {
	for _, c := range g.children {
		if err := c.wait(); err != nil {
			return c.fail(err)
		}
	}
	return nil
}

// stop kills the children still running and reaps them all.
func (g *group) stop() {
	g.cancel()
	for _, c := range g.children {
		c.wait()
	}
}

// tail keeps the last few KiB written to it: a child's stderr.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Package testutil holds helpers for mpq's multi-process tests: running the
// test binary again as a helper process in a given role (as os/os_test.go
// does with GO_WANT_HELPER_PROCESS), watching such children, and checking
// that a test leaves no goroutines behind. It does not import mpq, so that
// white-box tests of the root package can use it too.
//
// A test package using it registers its roles from init with [Register] and
// has a test that hands control to the role:
//
//	func TestHelperProcess(t *testing.T) { testutil.RunHelper(t) }
//
// In a normal run that test does nothing; in a child started by [Start] it
// runs the role and exits the process.
package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables that make a test binary a helper process.
const (
	EnvHelper = "GO_WANT_HELPER_PROCESS" // "1" in a helper process
	EnvRole   = "MPQ_TEST_ROLE"          // the role to play
)

var (
	rolesMu sync.Mutex
	roles   = map[string]func() error{}
)

// Register makes fn runnable in a helper process started with [Start] for
// role. Call it from an init function. A role that returns an error exits
// with status 1 after printing the error to stderr; one that returns nil
// exits with status 0.
func Register(role string, fn func() error) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	if _, dup := roles[role]; dup {
		panic("testutil: role " + role + " registered twice")
	}
	roles[role] = fn
}

// IsHelper reports whether this process is a helper process.
func IsHelper() bool { return os.Getenv(EnvHelper) == "1" }

// RunHelper runs the role named in the environment and exits the process;
// it returns at once unless this is a helper process. Call it from
// TestHelperProcess.
func RunHelper(t testing.TB) {
	if !IsHelper() {
		return
	}
	role := os.Getenv(EnvRole)
	rolesMu.Lock()
	fn := roles[role]
	rolesMu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "testutil: no helper role %q\n", role)
		os.Exit(2)
	}
	if err := fn(); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s (pid %d): %v\n", role, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Say writes one line to the standard output of a helper process, in one
// write, for the parent to read with [Child.Expect] or [Child.Lines].
func Say(format string, args ...any) {
	os.Stdout.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

// EnvInt returns the integer value of an environment variable of a helper
// process, or def if it is unset. It panics on a malformed value.
func EnvInt(name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("testutil: %s=%q: %v", name, s, err))
	}
	return n
}

// BlockForever parks the calling goroutine for good, without making the Go
// runtime report a deadlock. Helper processes call it at a point where the
// parent kills them.
func BlockForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// An Option configures a child started by [Start].
type Option func(*config)

type config struct {
	env   []string
	files []*os.File
	stdin bool
	cred  *syscall.Credential // AsUser
}

// Env adds "KEY=value" entries to the child's environment.
func Env(kv ...string) Option { return func(c *config) { c.env = append(c.env, kv...) } }

// Files passes open files to the child: the first is descriptor 3 there.
// The caller keeps ownership of them.
func Files(f ...*os.File) Option { return func(c *config) { c.files = append(c.files, f...) } }

// Stdin gives the child a pipe as standard input, written by [Child.Send]
// and closed by [Child.CloseStdin].
func Stdin() Option { return func(c *config) { c.stdin = true } }

// Options combines several options into one.
func Options(opts ...Option) Option {
	return func(c *config) {
		for _, o := range opts {
			o(c)
		}
	}
}

// A Child is a running helper process. Its standard output is read line by
// line as it comes; its standard error goes to a file shown when something
// fails. Its methods must be called from the test's goroutine.
type Child struct {
	t     testing.TB
	Role  string
	Cmd   *exec.Cmd
	errf  string
	stdin *os.File

	mu      sync.Mutex
	lines   []string
	next    int // first line Expect has not looked at
	eof     bool
	changed chan struct{} // closed and replaced when lines or eof change

	readDone chan struct{}
	done     chan struct{} // closed when the process has been waited for
	waitErr  error
}

// Start runs the test binary again as a helper process playing role. The
// child is killed (SIGKILL) if the test ends first, or if this process dies
// (Pdeathsig), and is always waited for before the test's cleanup finishes.
func Start(t testing.TB, role string, opts ...Option) *Child {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	errf, err := os.CreateTemp(t.TempDir(), "stderr-*")
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$")
	// A race-enabled child would sleep 1s at exit for late race reports.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), EnvHelper+"=1", EnvRole+"="+role, "GORACE="+gorace)
	cmd.Env = append(cmd.Env, cfg.env...)
	cmd.ExtraFiles = cfg.files
	cmd.Stdout, cmd.Stderr = w, errf
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = dieWithParent()
	if cfg.cred != nil {
		bin, err := sharedBinary(t)
		if err != nil {
			t.Fatalf("copy the test binary for another user: %v", err)
		}
		cmd.Path, cmd.Args[0], cmd.Dir = bin, bin, filepath.Dir(bin)
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = cfg.cred
	}
	c := &Child{
		t: t, Role: role, Cmd: cmd, errf: errf.Name(),
		changed: make(chan struct{}), readDone: make(chan struct{}), done: make(chan struct{}),
	}
	var sr *os.File
	if cfg.stdin {
		if sr, c.stdin, err = os.Pipe(); err != nil {
			r.Close()
			t.Fatal(err)
		}
		cmd.Stdin = sr
	}
	err = cmd.Start()
	if sr != nil {
		sr.Close()
	}
	if err != nil {
		r.Close()
		if c.stdin != nil {
			c.stdin.Close()
		}
		t.Fatalf("start helper %s: %v", role, err)
	}
	go c.read(r)
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.cleanup)
	return c
}

func (c *Child) read(r *os.File) {
	defer close(c.readDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		c.mu.Lock()
		c.lines = append(c.lines, sc.Text())
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.eof = true
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Child) cleanup() {
	c.CloseStdin()
	select {
	case <-c.done:
	default:
		c.Cmd.Process.Kill()
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("%v: not reaped 10s after SIGKILL", c)
	}
	select {
	case <-c.readDone:
	case <-time.After(10 * time.Second):
		c.t.Errorf("%v: standard output still open 10s after exit", c)
	}
}

// String names the child in messages.
func (c *Child) String() string { return fmt.Sprintf("helper %s (pid %d)", c.Role, c.Pid()) }

// Pid is the child's process ID.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Expect waits for the next line of output that starts with prefix and
// returns it, skipping other lines (they stay in [Child.Lines]). It fails
// the test if the output ends or timeout passes first.
func (c *Child) Expect(prefix string, timeout time.Duration) string {
	c.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		for c.next < len(c.lines) {
			l := c.lines[c.next]
			c.next++
			if strings.HasPrefix(l, prefix) {
				c.mu.Unlock()
				return l
			}
		}
		eof, changed := c.eof, c.changed
		c.mu.Unlock()
		if eof {
			c.Wait(5 * time.Second)
			c.t.Fatalf("%v ended its output without a line starting %q (%s)%s", c, prefix, c.exitStatus(), c.Diag())
		}
		select {
		case <-changed:
		case <-timer.C:
			c.t.Fatalf("%v: no line starting %q within %v%s", c, prefix, timeout, c.Diag())
		}
	}
}

// Lines returns the lines of output read so far.
func (c *Child) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Count returns how many lines of output read so far start with prefix.
func (c *Child) Count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// Send writes a line to the child's standard input.
func (c *Child) Send(line string) {
	c.t.Helper()
	if c.stdin == nil {
		c.t.Fatalf("%v: no standard input pipe (start it with the Stdin option)", c)
	}
	if _, err := c.stdin.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("write to %v: %v", c, err)
	}
}

// CloseStdin closes the child's standard input, if it has a pipe there.
func (c *Child) CloseStdin() {
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
	}
}

// Kill sends SIGKILL to the child and returns the time just before it did.
func (c *Child) Kill() time.Time {
	t0 := time.Now()
	if err := c.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		select {
		case <-c.done: // already exited
		default:
			c.t.Errorf("kill %v: %v", c, err)
		}
	}
	return t0
}

// Exited reports whether the child has exited and been waited for.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Wait waits for the child to exit and for its output to end, and returns
// what exec.Cmd.Wait returned. If timeout passes first it kills the child
// and fails the test.
func (c *Child) Wait(timeout time.Duration) error {
	c.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		c.Cmd.Process.Kill()
		<-c.done
		<-c.readDone
		c.t.Fatalf("%v still running after %v; killed it%s", c, timeout, c.Diag())
	}
	select {
	case <-c.readDone:
	case <-timer.C:
		c.t.Fatalf("%v exited but its standard output is still open after %v", c, timeout)
	}
	return c.waitErr
}

// Succeed waits for the child like [Child.Wait] and fails the test unless
// it exited with status 0.
func (c *Child) Succeed(timeout time.Duration) {
	c.t.Helper()
	if err := c.Wait(timeout); err != nil {
		c.t.Fatalf("%v: %v%s", c, err, c.Diag())
	}
}

func (c *Child) exitStatus() string {
	select {
	case <-c.done:
		if c.waitErr != nil {
			return c.waitErr.Error()
		}
		return "exit status 0"
	default:
		return "still running"
	}
}

// Diag returns the tail of the child's standard error and of its output, to
// append to a failure message.
func (c *Child) Diag() string {
	var b strings.Builder
	if data, _ := os.ReadFile(c.errf); len(data) > 0 {
		if len(data) > 4096 {
			data = append([]byte("..."), data[len(data)-4096:]...)
		}
		fmt.Fprintf(&b, "\n--- stderr of %v:\n%s", c, bytes.TrimRight(data, "\n"))
	}
	lines := c.Lines()
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	if len(lines) > 0 {
		fmt.Fprintf(&b, "\n--- last output lines of %v:\n%s", c, strings.Join(lines, "\n"))
	}
	return b.String()
}

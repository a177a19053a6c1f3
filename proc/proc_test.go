package proc_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
	"github.com/mpq-go/mpq/proc"
)

// record is a plain value with a bit of everything.
type record struct {
	Name    string
	When    time.Time
	Tags    []string
	Score   float64
	private int // does not travel
}

// echoed is what echo saw of its arguments.
type echoed struct {
	S    string
	N    int64
	B    []byte
	M    map[string]int
	R    record
	P    *record
	Nil  *record
	Tail []uint8
}

// The functions the tests run in child processes.
var (
	echo = proc.Define("echo", func(ctx context.Context, out *mpq.Queue, s string, n int64, b []byte, m map[string]int, r record, p, nilp *record, tail ...uint8) error {
		return putGob(ctx, out, echoed{s, n, b, m, r, p, nilp, tail})
	})

	// copyQueue moves n messages from in to out.
	copyQueue = proc.Define("copy-queue", func(ctx context.Context, in, out *mpq.Queue, n int) error {
		for range n {
			msg, err := in.Get(ctx)
			if err != nil {
				return err
			}
			if err := out.Put(ctx, msg); err != nil {
				return err
			}
		}
		return nil
	})

	// writeFile writes a line to w (an *os.File given to an io.Writer).
	writeFile = proc.Define("write-file", func(ctx context.Context, w io.Writer, line string) error {
		_, err := fmt.Fprintln(w, line)
		return err
	})

	// sendN sends 0..n-1 on c.
	sendN = proc.Define("send-n", func(ctx context.Context, c *mpq.Conn, n int) error {
		for i := range n {
			if err := c.Send(ctx, []byte(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return nil
	})

	// echoConn sends back what it receives, upper-cased, until EOF.
	echoConn = proc.Define("echo-conn", func(ctx context.Context, c *mpq.Conn) error {
		for {
			msg, err := c.Recv(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := c.Send(ctx, []byte(strings.ToUpper(string(msg)))); err != nil {
				return err
			}
		}
	})

	fail = proc.Define("fail", func(ctx context.Context, msg string, wrapEOF bool) error {
		if wrapEOF {
			return fmt.Errorf("%s: %w", msg, io.EOF)
		}
		return errors.New(msg)
	})

	succeed = proc.Define("succeed", func(ctx context.Context) {})

	panicky = proc.Define("panicky", func(ctx context.Context, msg string) error {
		panic(msg)
	})

	panicInGoroutine = proc.Define("panic-in-goroutine", func(ctx context.Context, msg string) error {
		go func() { panic(msg) }()
		select {}
	})

	exitWith = proc.Define("exit-with", func(ctx context.Context, code int) { os.Exit(code) })

	// waitCancel says "ready", waits for its context to be cancelled, says
	// why, and returns ctx.Err().
	waitCancel = proc.Define("wait-cancel", func(ctx context.Context, out *mpq.Queue) error {
		if err := put(ctx, out, "ready"); err != nil {
			return err
		}
		<-ctx.Done()
		put(context.Background(), out, "cancelled: %v", context.Cause(ctx))
		return ctx.Err()
	})

	// stubborn says "ready", and after its context is cancelled says
	// "cancelled" and goes on regardless.
	stubborn = proc.Define("stubborn", func(ctx context.Context, out *mpq.Queue) error {
		if err := put(ctx, out, "ready"); err != nil {
			return err
		}
		<-ctx.Done()
		put(context.Background(), out, "cancelled")
		testutil.BlockForever()
		return nil
	})

	// deaf ignores SIGTERM altogether.
	deaf = proc.Define("deaf", func(ctx context.Context, out *mpq.Queue) error {
		signal.Ignore(syscall.SIGTERM)
		if err := put(ctx, out, "ready"); err != nil {
			return err
		}
		testutil.BlockForever()
		return nil
	})

	// block says "ready" and blocks until killed.
	block = proc.Define("block", func(ctx context.Context, out *mpq.Queue) error {
		if err := put(ctx, out, "ready"); err != nil {
			return err
		}
		testutil.BlockForever()
		return nil
	})

	// middle starts inner (wait-cancel, or stubborn if stubborn is set)
	// with out, says "grandchild PID", and blocks until killed.
	middle = proc.Define("middle", func(ctx context.Context, out *mpq.Queue, stubbornChild, detached bool) error {
		f := waitCancel
		if stubbornChild {
			f = stubborn
		}
		p, err := f.StartWith(ctx, &proc.Options{Grace: 200 * time.Millisecond, Detached: detached}, out)
		if err != nil {
			return err
		}
		if err := put(ctx, out, "grandchild %d", p.Pid()); err != nil {
			return err
		}
		testutil.BlockForever()
		return nil
	})

	// environment prints its environment variable MPQ_TEST_X and its
	// working directory, and copies a line from standard input.
	environment = proc.Define("environment", func(ctx context.Context) error {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Printf("x=%s wd=%s stdin=%q\n", os.Getenv("MPQ_TEST_X"), wd, line)
		fmt.Fprintln(os.Stderr, "to stderr")
		return nil
	})

	// fds reports its descriptors beyond 0, 1 and 2, whether each one is
	// close-on-exec, and what it is.
	fds = proc.Define("fds", func(ctx context.Context, out *mpq.Queue, f *os.File) error {
		return put(ctx, out, "%s", strings.Join(openFiles(), "\n"))
	})

	// ghost is not defined in a child whose environment has
	// MPQ_TEST_NO_GHOST set.
	ghost = defineUnless("MPQ_TEST_NO_GHOST", "ghost", func(ctx context.Context) {})

	goexit = proc.Define("goexit", func(ctx context.Context) { runtimeGoexit() })

	fatal = proc.Define("fatal", func(ctx context.Context) {
		var mu sync.Mutex
		mu.Unlock() // a fatal error, which recover does not catch
	})

	// digest puts the length and SHA-256 of data.
	digest = proc.Define("digest", func(ctx context.Context, out *mpq.Queue, data []byte) error {
		return put(ctx, out, "%d %x", len(data), sha256.Sum256(data))
	})
)

// unique returns a name not defined before, for tests that define
// functions and may run more than once (-count).
func unique(name string) string { return fmt.Sprintf("%s-%d", name, defined.Add(1)) }

var defined atomic.Int64

func defineUnless(env, name string, fn any) *proc.Func {
	if os.Getenv(env) != "" {
		return nil
	}
	return proc.Define(name, fn)
}

func TestArgumentsRoundTrip(t *testing.T) {
	out := newQueue(t)
	when := time.Date(2024, 2, 29, 12, 34, 56, 789012345, time.UTC)
	r := record{Name: "r", When: when, Tags: []string{"a", "b"}, Score: 2.5, private: 7}
	p := &record{Name: "pointed"}
	s := "héllo \xff\x00 world" // not UTF-8: a Go string holds any bytes
	b := []byte{0, 1, 2, 255}
	m := map[string]int{"one": 1, "two": 2}
	// An int for the int64 parameter: converted.
	pr := start(t, echo, nil, out, s, 42, b, m, r, p, nil, uint8(1), uint8(2))
	var got echoed
	getGob(t, out, &got)
	if err := wait(t, pr); err != nil {
		t.Fatal(err)
	}
	r.private = 0
	want := echoed{S: s, N: 42, B: b, M: m, R: r, P: p, Tail: []uint8{1, 2}}
	if !got.R.When.Equal(when) {
		t.Errorf("time: got %v; want %v", got.R.When, when)
	}
	got.R.When, want.R.When = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v; want %+v", got, want)
	}
}

func TestQueueArguments(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			var in, out *mpq.Queue
			if named {
				in, out = queueIn(t, "in"), queueIn(t, "out")
			} else {
				in, out = newQueue(t), newQueue(t)
			}
			p := start(t, copyQueue, nil, in, out, 3)
			for _, m := range []string{"a", "b", "c"} {
				if err := in.Put(t.Context(), []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range []string{"a", "b", "c"} {
				if got := get(t, out); got != want {
					t.Errorf("got %q; want %q", got, want)
				}
			}
			if err := wait(t, p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFileArgument(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := start(t, writeFile, nil, w, "through the pipe")
	w.Close() // the child has its own
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), "through the pipe\n"; got != want {
		t.Errorf("read %q; want %q", got, want)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
}

func TestConnArguments(t *testing.T) {
	t.Run("one-way", func(t *testing.T) {
		recv, send, err := mpq.Pipe(false)
		if err != nil {
			t.Fatal(err)
		}
		defer recv.Close()
		p := start(t, sendN, nil, send, 5)
		send.Close() // as in Python: else recv sees no EOF
		for i := range 5 {
			msg, err := recv.Recv(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(msg), fmt.Sprint(i); got != want {
				t.Errorf("got %q; want %q", got, want)
			}
		}
		if _, err := recv.Recv(t.Context()); err != io.EOF {
			t.Errorf("after the sender exited: got %v; want io.EOF", err)
		}
		if err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("duplex", func(t *testing.T) {
		a, b, err := mpq.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		p := start(t, echoConn, nil, b)
		b.Close()
		for _, m := range []string{"x", "yz"} {
			if err := a.Send(t.Context(), []byte(m)); err != nil {
				t.Fatal(err)
			}
			got, err := a.Recv(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ToUpper(m); string(got) != want {
				t.Errorf("got %q; want %q", got, want)
			}
		}
		a.Close() // the child sees EOF and returns
		if err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFunctionError(t *testing.T) {
	p := start(t, fail, nil, "boom", false)
	e := exitError(t, wait(t, p))
	if e.Message != "boom" || e.Code != proc.ExitFailed || e.Panic || e.Signal != 0 || e.Func != "fail" || e.Pid != p.Pid() {
		t.Errorf("got %#v; want Message boom, Code %d", e, proc.ExitFailed)
	}
	if got, want := e.Error(), fmt.Sprintf("proc fail (pid %d): boom", p.Pid()); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if got := p.ExitCode(); got != proc.ExitFailed {
		t.Errorf("ExitCode() = %d; want %d", got, proc.ExitFailed)
	}

	// A well-known error keeps its identity.
	p = start(t, fail, nil, "short read", true)
	err := wait(t, p)
	if !errors.Is(err, io.EOF) {
		t.Errorf("got %v; want an error matching io.EOF", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("%v matches context.Canceled", err)
	}
}

func TestPanic(t *testing.T) {
	for _, f := range []*proc.Func{panicky, panicInGoroutine} {
		t.Run(f.Name(), func(t *testing.T) {
			p := start(t, f, &proc.Options{Stderr: io.Discard}, "boom\x01")
			err := wait(t, p)
			e := exitError(t, err)
			if !e.Panic || e.Message != "boom\x01" || e.Code != proc.ExitPanic {
				t.Errorf("got Panic %v, Message %q, Code %d; want a panic with boom\\x01, code %d", e.Panic, e.Message, e.Code, proc.ExitPanic)
			}
			if !strings.Contains(e.Stack, "goroutine ") || !strings.Contains(e.Stack, "proc_test") {
				t.Errorf("stack does not show the panicking function:\n%s", e.Stack)
			}
			if got, want := err.Error(), fmt.Sprintf("proc %s (pid %d): panic: boom\x01", f.Name(), p.Pid()); got != want {
				t.Errorf("Error() = %q; want %q", got, want)
			}
		})
	}
}

func TestFatalError(t *testing.T) {
	p := start(t, fatal, &proc.Options{Stderr: io.Discard})
	e := exitError(t, wait(t, p))
	// The runtime writes the message itself to standard error only.
	if e.Panic || e.Code != 2 || !strings.HasPrefix(e.Message, "fatal error") {
		t.Errorf("got Panic %v, Code %d, Message %q; want a fatal error, code 2", e.Panic, e.Code, e.Message)
	}
	if !strings.Contains(e.Stack, "goroutine ") || !strings.Contains(e.Stack, "Mutex).Unlock") {
		t.Errorf("stack does not show the failing call:\n%s", e.Stack)
	}
}

func TestLargeArgument(t *testing.T) {
	// Far more than the command line or the environment could take.
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	out := newQueue(t)
	p := start(t, digest, nil, out, data)
	if got, want := get(t, out), fmt.Sprintf("%d %x", len(data), sha256.Sum256(data)); got != want {
		t.Errorf("child saw %s; want %s", got, want)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
}

func TestExitStatus(t *testing.T) {
	p := start(t, exitWith, nil, 7)
	e := exitError(t, wait(t, p))
	if e.Code != 7 || e.Message != "" {
		t.Errorf("got Code %d, Message %q; want 7, none", e.Code, e.Message)
	}
	if got, want := e.Error(), fmt.Sprintf("proc exit-with (pid %d): exit status 7", p.Pid()); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}

	p = start(t, succeed, nil)
	if err := wait(t, p); err != nil || p.ExitCode() != 0 {
		t.Errorf("Wait() = %v, ExitCode() = %d; want nil, 0", err, p.ExitCode())
	}

	p = start(t, goexit, nil)
	e = exitError(t, wait(t, p))
	if e.Code != proc.ExitSetup || !strings.Contains(e.Message, "Goexit") {
		t.Errorf("got %v (code %d); want a report of runtime.Goexit", e, e.Code)
	}
}

func TestTerminateCancelsContext(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			out := newQueue(t)
			p := start(t, waitCancel, nil, out)
			if got := get(t, out); got != "ready" {
				t.Fatalf("got %q; want ready", got)
			}
			if p.ExitCode() != -1 {
				t.Errorf("ExitCode() = %d while running; want -1", p.ExitCode())
			}
			var err error
			if sig == syscall.SIGTERM {
				err = p.Terminate()
			} else {
				err = p.Signal(sig)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := get(t, out), "cancelled: proc: received signal "+sig.String(); got != want {
				t.Errorf("got %q; want %q", got, want)
			}
			err = wait(t, p)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait() = %v; want an error matching context.Canceled", err)
			}
			if e := exitError(t, err); e.Code != proc.ExitFailed || e.Signal != 0 || e.Message != "context canceled" {
				t.Errorf("got %#v; want code %d, message context canceled", e, proc.ExitFailed)
			}
			// Once it has exited, Terminate and Kill do nothing.
			if err := p.Terminate(); err != nil {
				t.Errorf("Terminate after exit: %v", err)
			}
			if err := p.Kill(); err != nil {
				t.Errorf("Kill after exit: %v", err)
			}
		})
	}
}

func TestTerminateGrace(t *testing.T) {
	out := newQueue(t)
	p := start(t, stubborn, &proc.Options{Grace: 200 * time.Millisecond}, out)
	if got := get(t, out); got != "ready" {
		t.Fatalf("got %q; want ready", got)
	}
	p.Terminate()
	if got := get(t, out); got != "cancelled" {
		t.Fatalf("got %q; want cancelled", got)
	}
	e := exitError(t, wait(t, p))
	if e.Signal != syscall.SIGTERM || e.Code != -1 || p.ExitCode() != -1 {
		t.Errorf("got %#v, ExitCode %d; want killed by SIGTERM, code -1", e, p.ExitCode())
	}
	if !strings.Contains(e.Message, "did not return within 200ms") {
		t.Errorf("message %q does not mention the grace period", e.Message)
	}
	if got, want := e.Error(), fmt.Sprintf("proc stubborn (pid %d): killed by signal terminated: ", p.Pid()); !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q; want it to start with %q", got, want)
	}
}

func TestTerminateTwice(t *testing.T) {
	out := newQueue(t)
	p := start(t, stubborn, &proc.Options{Grace: -1}, out)
	if got := get(t, out); got != "ready" {
		t.Fatalf("got %q; want ready", got)
	}
	p.Terminate()
	if got := get(t, out); got != "cancelled" {
		t.Fatalf("got %q; want cancelled", got)
	}
	p.Terminate()
	e := exitError(t, wait(t, p))
	if e.Signal != syscall.SIGTERM || !strings.Contains(e.Message, "then signal terminated") {
		t.Errorf("got %#v; want killed by SIGTERM after a second signal", e)
	}
}

func TestKill(t *testing.T) {
	out := newQueue(t)
	p := start(t, block, nil, out)
	if got := get(t, out); got != "ready" {
		t.Fatalf("got %q; want ready", got)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	err := wait(t, p)
	e := exitError(t, err)
	if e.Signal != syscall.SIGKILL || e.Code != -1 || p.ExitCode() != -1 || e.Message != "" {
		t.Errorf("got %#v, ExitCode %d; want killed by SIGKILL, code -1", e, p.ExitCode())
	}
	if got, want := err.Error(), fmt.Sprintf("proc block (pid %d): killed by signal killed", p.Pid()); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestStartContext(t *testing.T) {
	t.Run("cancel terminates", func(t *testing.T) {
		out := newQueue(t)
		ctx, cancel := context.WithCancel(t.Context())
		p, err := waitCancel.Start(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, out); got != "ready" {
			t.Fatalf("got %q; want ready", got)
		}
		cancel()
		if err := wait(t, p); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait() = %v; want an error matching context.Canceled", err)
		}
	})
	t.Run("SIGKILL after grace", func(t *testing.T) {
		out := newQueue(t)
		ctx, cancel := context.WithCancel(t.Context())
		p, err := deaf.StartWith(ctx, &proc.Options{Grace: 100 * time.Millisecond}, out)
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, out); got != "ready" {
			t.Fatalf("got %q; want ready", got)
		}
		cancel()
		if e := exitError(t, wait(t, p)); e.Signal != syscall.SIGKILL {
			t.Errorf("got %v; want killed by SIGKILL", e)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if p, err := succeed.Start(ctx); err != context.Canceled {
			if p != nil {
				p.Kill()
				p.Wait()
			}
			t.Errorf("Start with a cancelled ctx: %v; want context.Canceled", err)
		}
	})
}

// grandchildReady reads what middle and its child put into out, in
// whichever order they come (the child may be ready before middle says
// whom it started): the grandchild's pid, and its "ready".
func grandchildReady(t *testing.T, out *mpq.Queue) int {
	t.Helper()
	gc, ready := 0, false
	for range 2 {
		m := get(t, out)
		switch _, err := fmt.Sscanf(m, "grandchild %d", &gc); {
		case err == nil:
		case m == "ready" && !ready:
			ready = true
		default:
			t.Fatalf("got %q; want \"grandchild PID\" and \"ready\"", m)
		}
	}
	if gc == 0 || !ready {
		t.Fatalf("grandchild %d, ready %v; want both", gc, ready)
	}
	return gc
}

func TestParentDeathTerminatesChild(t *testing.T) {
	for _, stubbornChild := range []bool{false, true} {
		t.Run(fmt.Sprintf("stubborn=%v", stubbornChild), func(t *testing.T) {
			out := newQueue(t)
			m := start(t, middle, nil, out, stubbornChild, false)
			gc := grandchildReady(t, out)
			if !alive(gc) {
				t.Fatalf("grandchild %d is not running", gc)
			}
			m.Kill()
			if e := exitError(t, wait(t, m)); e.Signal != syscall.SIGKILL {
				t.Fatalf("middle: %v; want killed by SIGKILL", e)
			}
			want := "cancelled: proc: parent process exited"
			if stubbornChild {
				want = "cancelled"
			}
			if got := get(t, out); got != want {
				t.Errorf("grandchild said %q; want %q", got, want)
			}
			eventually(t, fmt.Sprintf("grandchild %d is gone", gc), func() bool { return !alive(gc) })
		})
	}
}

func TestDetached(t *testing.T) {
	out := newQueue(t)
	m := start(t, middle, nil, out, false, true)
	gc := grandchildReady(t, out)
	defer syscall.Kill(gc, syscall.SIGKILL)
	if sid, err := unix.Getsid(gc); err != nil || sid != gc {
		t.Errorf("detached child %d is in session %d (%v); want a session of its own", gc, sid, err)
	}
	m.Kill()
	wait(t, m)
	// Its parent is gone and it is not terminated: it keeps running until
	// it is told to stop.
	time.Sleep(500 * time.Millisecond)
	if !alive(gc) {
		t.Fatalf("detached grandchild %d died with its parent", gc)
	}
	if err := syscall.Kill(gc, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got, want := get(t, out), "cancelled: proc: received signal terminated"; got != want {
		t.Errorf("grandchild said %q; want %q", got, want)
	}
	eventually(t, fmt.Sprintf("grandchild %d is gone", gc), func() bool { return !alive(gc) })
}

func TestDetachedIgnoresStartContext(t *testing.T) {
	out := newQueue(t)
	ctx, cancel := context.WithCancel(t.Context())
	p, err := waitCancel.StartWith(ctx, &proc.Options{Detached: true}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); p.Wait() }()
	if got := get(t, out); got != "ready" {
		t.Fatalf("got %q; want ready", got)
	}
	cancel()
	time.Sleep(500 * time.Millisecond)
	select {
	case <-p.Done():
		t.Fatalf("detached child exited when Start's ctx was cancelled: %v", p.Wait())
	default:
	}
	p.Terminate()
	if err := wait(t, p); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait() = %v; want an error matching context.Canceled", err)
	}
}

func TestInvalidFunc(t *testing.T) {
	type holder struct{ Q *mpq.Queue }
	for _, tc := range []struct {
		name string
		fn   any
		want string
	}{
		{"not-a-func", 42, "is int"},
		{"nil-func", (func(context.Context))(nil), "want a func"},
		{"no-ctx", func(q *mpq.Queue) error { return nil }, "first parameter must be a context.Context"},
		{"bad-result", func(ctx context.Context) int { return 0 }, "must return an error or nothing"},
		{"two-results", func(ctx context.Context) (int, error) { return 0, nil }, "must return an error or nothing"},
		{"chan-param", func(ctx context.Context, c chan int) {}, "parameter 1 of chan-param has type chan int"},
		{"func-param", func(ctx context.Context, n int, f func()) {}, "parameter 2 of func-param has type func()"},
		{"queue-in-struct", func(ctx context.Context, h holder) {}, "holds a *mpq.Queue"},
		{"typed-view", func(ctx context.Context, q *mpq.TypedQueue[string]) {}, "pass its *mpq.Queue or *mpq.Conn and make the view there"},
		{unique("queues-in-slice"), func(ctx context.Context, qs ...*mpq.Queue) {}, ""}, // fine: variadic of queues
		{unique("mpq-options"), func(ctx context.Context, o mpq.Options) {}, ""},        // fine: plain data
		{"", func(ctx context.Context) {}, "empty name"},
		{"echo", func(ctx context.Context) {}, `"echo" is defined twice`},
	} {
		f := proc.Define(tc.name, tc.fn)
		if tc.want == "" {
			if f.Err() != nil {
				t.Errorf("Define(%q): %v", tc.name, f.Err())
			}
			continue
		}
		if !errors.Is(f.Err(), proc.ErrInvalidFunc) || !strings.Contains(f.Err().Error(), tc.want) {
			t.Errorf("Define(%q).Err() = %v; want ErrInvalidFunc saying %q", tc.name, f.Err(), tc.want)
		}
		if p, err := f.Start(t.Context()); !errors.Is(err, proc.ErrInvalidFunc) {
			if p != nil {
				p.Kill()
				p.Wait()
			}
			t.Errorf("Define(%q).Start() = %v; want ErrInvalidFunc", tc.name, err)
		}
	}
	// The first definition of a name keeps working.
	if err := wait(t, start(t, succeed, nil)); err != nil {
		t.Error(err)
	}
	var nilFunc *proc.Func
	if _, err := nilFunc.Start(t.Context()); !errors.Is(err, proc.ErrInvalidFunc) {
		t.Errorf("Start on a nil *Func: %v; want ErrInvalidFunc", err)
	}
}

func TestUnknownFunc(t *testing.T) {
	// Defined after Main: Start knows that no child could run it.
	late := proc.Define(unique("late"), func(ctx context.Context) {})
	if err := late.Err(); err != nil {
		t.Fatal(err)
	}
	if p, err := late.Start(t.Context()); !errors.Is(err, proc.ErrUnknownFunc) {
		if p != nil {
			p.Kill()
			p.Wait()
		}
		t.Errorf("Start of a function defined after Main: %v; want ErrUnknownFunc", err)
	}

	// Not defined in the child: the child says so.
	p := start(t, ghost, &proc.Options{Env: append(os.Environ(), "MPQ_TEST_NO_GHOST=1")})
	err := wait(t, p)
	if !errors.Is(err, proc.ErrUnknownFunc) {
		t.Fatalf("Wait() = %v; want an error matching ErrUnknownFunc", err)
	}
	if e := exitError(t, err); e.Code != proc.ExitSetup {
		t.Errorf("exit code %d; want %d", e.Code, proc.ExitSetup)
	}
}

func TestInvalidArgs(t *testing.T) {
	q := newQueue(t)
	closed, err := mpq.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	var nilQueue *mpq.Queue
	recv, send, err := mpq.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	defer send.Close()
	before := fdCount(t)
	for _, tc := range []struct {
		f    *proc.Func
		args []any
		want string
	}{
		{copyQueue, []any{q, q}, "copy-queue takes 3 arguments, got 2"},
		{copyQueue, []any{q, q, 1, 2}, "copy-queue takes 3 arguments, got 4"},
		{echo, []any{q, "s", 1, nil, nil, record{}}, "echo takes at least 8 arguments, got 6"},
		{copyQueue, []any{q, "out", 1}, "argument 2 of copy-queue: want *mpq.Queue, got string"},
		{copyQueue, []any{q, q, "1"}, "argument 3 of copy-queue: want int, got string"},
		{copyQueue, []any{q, q, 1.5}, "argument 3 of copy-queue: want int, got float64"},
		{copyQueue, []any{q, q, nil}, "argument 3 of copy-queue: want int, got nil"},
		{copyQueue, []any{q, nilQueue, 1}, "argument 2 of copy-queue: got a nil *mpq.Queue"},
		{copyQueue, []any{q, closed, 1}, "argument 2 of copy-queue: " + mpq.ErrClosed.Error()},
		{copyQueue, []any{q, send, 1}, "argument 2 of copy-queue: want *mpq.Queue, got *mpq.Conn"},
		{sendN, []any{q, 1}, "argument 1 of send-n: want *mpq.Conn, got *mpq.Queue"},
		{writeFile, []any{"stdout", "x"}, "argument 1 of write-file: want io.Writer, got string: a plain value needs a parameter of a concrete type"},
		{echo, []any{q, "s", 1, nil, nil, record{}, nil, nil, uint8(1), 300}, "argument 10 of echo: want uint8, got int"},
		{echo, []any{q, "s", 1, nil, nil, record{}, nil, nil, make(chan int)}, "argument 9 of echo: want uint8, got chan int"},
		{fail, []any{"x", func() {}}, "argument 2 of fail: "},
	} {
		p, err := tc.f.Start(t.Context(), tc.args...)
		if p != nil {
			p.Kill()
			p.Wait()
		}
		if !errors.Is(err, proc.ErrInvalidArgs) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s.Start(%v) = %v; want ErrInvalidArgs saying %q", tc.f.Name(), tc.args, err, tc.want)
		}
	}
	if after := fdCount(t); after != before {
		t.Errorf("%d descriptors open after refused starts; want %d as before", after, before)
	}
}

func TestWaitConcurrently(t *testing.T) {
	p := start(t, fail, nil, "same for all", false)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Wait() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != errs[0] || err == nil {
			t.Fatalf("Wait returned %v and %v", errs[0], err)
		}
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Wait returned")
	}
	if p.Wait() != errs[0] {
		t.Error("a later Wait returned something else")
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	outf, err := os.Create(dir + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer outf.Close()
	var errb strings.Builder
	p := start(t, environment, &proc.Options{
		Env:    append(os.Environ(), "MPQ_TEST_X=42"),
		Dir:    dir,
		Stdin:  strings.NewReader("input line\n"),
		Stdout: outf,
		Stderr: &errb,
	})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dir + "/out")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), fmt.Sprintf("x=42 wd=%s stdin=%q\n", dir, "input line\n"); got != want {
		t.Errorf("child printed %q; want %q", got, want)
	}
	if got := errb.String(); got != "to stderr\n" {
		t.Errorf("child's stderr: %q; want %q", got, "to stderr\n")
	}

	// By default standard input is empty.
	var outb strings.Builder
	p = start(t, environment, &proc.Options{Stdout: &outb, Stderr: io.Discard})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(outb.String(), `stdin=""`) {
		t.Errorf("child printed %q; want an empty stdin", outb.String())
	}
}

func TestChildDescriptors(t *testing.T) {
	out := newQueue(t)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := start(t, fds, nil, out, f)
	open := get(t, out)
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	// Descriptors this process inherited without close-on-exec reach the
	// child too, as they would with exec.Cmd: not ours to judge.
	inherited := map[string]bool{}
	for _, d := range openFiles() {
		if fd, cloexec, _ := strings.Cut(d, ":"); !strings.HasPrefix(cloexec, "true") {
			inherited[fd] = true
		}
	}
	// The payload is closed; the result pipe and the arguments are open
	// but close-on-exec, as is everything else.
	var pipes int
	for _, d := range strings.Split(open, "\n") {
		fd, rest, _ := strings.Cut(d, ":")
		if strings.Contains(rest, "mpq-proc-args") {
			t.Errorf("the payload is still open in the child: %s", d)
		}
		if !strings.HasPrefix(rest, "true") && !inherited[fd] {
			t.Errorf("descriptor %s of the child is not close-on-exec", d)
		}
		if strings.Contains(rest, "pipe:") && !inherited[fd] {
			pipes++
		}
	}
	if pipes == 0 {
		t.Errorf("child's descriptors lack the result pipe:\n%s", open)
	}
}

// openFiles describes the descriptors of this process beyond 0, 1 and 2:
// "fd:cloexec:target".
func openFiles() []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var open []string
	for _, e := range ents {
		var fd int
		fmt.Sscan(e.Name(), &fd)
		if fd <= 2 {
			continue
		}
		flags, err := unixFcntl(fd)
		if err != nil {
			continue // ReadDir's own, now closed
		}
		link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		open = append(open, fmt.Sprintf("%d:%v:%s", fd, flags&syscall.FD_CLOEXEC != 0, link))
	}
	return open
}

func TestManyStartsLeakNothing(t *testing.T) {
	testutil.CheckGoroutines(t)
	in, out := newQueue(t), newQueue(t)
	// Warm up: the runtime opens some descriptors on first use.
	if err := wait(t, start(t, succeed, nil)); err != nil {
		t.Fatal(err)
	}
	before := fdCount(t)
	const n, parallel = 120, 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var p *proc.Process
			var err error
			switch i % 4 {
			case 0:
				p, err = succeed.Start(context.Background())
			case 1:
				p, err = fail.Start(context.Background(), "expected", false)
			case 2:
				p, err = copyQueue.Start(context.Background(), in, out, 0)
			case 3:
				var a, b *mpq.Conn
				if a, b, err = mpq.Pipe(true); err != nil {
					break
				}
				p, err = echoConn.Start(context.Background(), b)
				b.Close()
				a.Close()
			}
			if err != nil {
				errs <- err
				return
			}
			if i%3 == 0 {
				<-p.Done() // nobody calls Wait
				return
			}
			err = p.Wait()
			if i%4 == 1 && !strings.Contains(fmt.Sprint(err), "expected") || i%4 != 1 && err != nil {
				errs <- fmt.Errorf("start %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if kids := children(t); len(kids) != 0 {
		t.Errorf("children left (pid: state): %v", kids)
	}
	if after := fdCount(t); after != before {
		t.Errorf("%d descriptors open after %d starts; want %d as before", after, n, before)
	}
}

func TestStartInChildWithoutMain(t *testing.T) {
	// A child process (of a program whose main does not call Main) is
	// marked in its environment; Start there refuses.
	t.Setenv("MPQ_PROC_CHILD", "x")
	if _, err := succeed.Start(t.Context()); !errors.Is(err, proc.ErrNoMain) {
		t.Errorf("Start in a child without Main: %v; want ErrNoMain", err)
	}
}

//go:build linux

package proc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
	"github.com/mpq-go/mpq/proc"
)

// TestHelperProcess is not a test: it is the entry point of the helper
// processes started with internal/testutil (proc's own children enter
// through Main, in TestMain).
func TestHelperProcess(t *testing.T) { testutil.RunHelper(t) }

func init() {
	testutil.Register("proc-nofile", runProcNofile)
}

// takeAll receives one argument of each kind that travels as a descriptor,
// and says so on the queue.
var takeAll = proc.Define("take-all", func(ctx context.Context, out *mpq.Queue, c *mpq.Conn, f *os.File) error {
	if err := c.Send(ctx, []byte("conn")); err != nil {
		return err
	}
	return out.Put(ctx, []byte("arrived "+f.Name()))
})

// A startAttempt is what came of one Start with Free descriptors free.
type startAttempt struct {
	Free         int
	Err          string   // "" if Start succeeded
	TooManyFiles bool     // errors.Is(err, mpq.ErrTooManyFiles)
	EMFILE       bool     // errors.Is(err, syscall.EMFILE)
	InvalidArgs  bool     // errors.Is(err, proc.ErrInvalidArgs)
	Panic        string   // Start panicked
	Leaked       []string // descriptors opened by Start and left open (or closed)
	Goroutines   int      // goroutines left running
	Children     []string // child processes left, running or zombie ("pid:state")
	Wait         string   // what Wait of a started child returned
}

// procChildren lists the children of this process, with their states.
func procChildren() []string {
	ents, _ := os.ReadDir("/proc")
	var kids []string
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if state, ppid, ok := procStat(pid); ok && ppid == os.Getpid() {
			kids = append(kids, fmt.Sprintf("%d:%c", pid, state))
		}
	}
	return kids
}

// runProcNofile starts a function (with arguments that travel as
// descriptors if MPQ_TEST_CALL is "args") with 0, 1, 2... descriptors free
// until Start succeeds, and reports each attempt.
func runProcNofile() error {
	withArgs := os.Getenv("MPQ_TEST_CALL") == "args"
	ctx := context.Background()
	out, err := mpq.New(&mpq.Options{Capacity: 64 << 10})
	if err != nil {
		return err
	}
	defer out.Close()
	a, b, err := mpq.Pipe(false)
	if err != nil {
		return err
	}
	defer a.Close()
	defer b.Close()
	f, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer f.Close()
	start := func() (*proc.Process, error) {
		if withArgs {
			return takeAll.Start(ctx, out, b, f)
		}
		return succeed.Start(ctx)
	}
	// What a child does, and the first start opens what the runtime opens
	// once.
	check := func(p *proc.Process) error {
		if err := p.Wait(); err != nil {
			return err
		}
		if !withArgs {
			return nil
		}
		if m, err := a.TryRecv(); err != nil || string(m) != "conn" {
			return fmt.Errorf("from the conn: %q, %v", m, err)
		}
		if m, err := out.TryGet(); err != nil || string(m) != "arrived "+os.DevNull {
			return fmt.Errorf("from the queue: %q, %v", m, err)
		}
		return nil
	}
	p, err := start()
	if err != nil {
		return fmt.Errorf("start without a limit: %w", err)
	}
	if err := check(p); err != nil {
		return fmt.Errorf("child started without a limit: %w", err)
	}
	for free := 0; free <= 40; free++ {
		at := startAttempt{Free: free}
		before, err := testutil.OpenFDs()
		if err != nil {
			return err
		}
		base := runtime.NumGoroutine()
		release, err := testutil.Squeeze(free)
		if err != nil {
			return err
		}
		p, err := func() (p *proc.Process, err error) {
			defer func() {
				if v := recover(); v != nil {
					at.Panic = fmt.Sprint(v)
					err = fmt.Errorf("panic: %v", v)
				}
			}()
			return start()
		}()
		release()
		if err == nil {
			if err := check(p); err != nil {
				at.Wait = err.Error()
			}
		} else {
			at.Err = err.Error()
			at.TooManyFiles = errors.Is(err, mpq.ErrTooManyFiles)
			at.EMFILE = errors.Is(err, syscall.EMFILE)
			at.InvalidArgs = errors.Is(err, proc.ErrInvalidArgs)
		}
		// Wait has returned: the child has been reaped.
		at.Children = procChildren()
		at.Goroutines = testutil.SettleGoroutines(base)
		after, err := testutil.OpenFDs()
		if err != nil {
			return err
		}
		at.Leaked = testutil.FDDiff(before, after)
		line, _ := json.Marshal(at)
		testutil.Say("attempt %s", line)
		if at.Err == "" || at.Panic != "" {
			break
		}
	}
	return nil
}

// TestLimitNofileStart starves Start of descriptors at each of its steps:
// with 0, 1, 2... descriptors free, every Start but the last must fail with
// ErrTooManyFiles, saying how to raise the limit, and leave no descriptor,
// goroutine or child process (running or zombie) behind; the last must
// start a child that gets its arguments.
func TestLimitNofileStart(t *testing.T) {
	for _, call := range []string{"bare", "args"} {
		t.Run(call, func(t *testing.T) {
			testutil.CheckGoroutines(t)
			c := testutil.Start(t, "proc-nofile", testutil.Env("MPQ_TEST_CALL="+call))
			c.Succeed(2 * timeout)
			var as []startAttempt
			for _, l := range c.Lines() {
				if data, ok := strings.CutPrefix(l, "attempt "); ok {
					var a startAttempt
					if err := json.Unmarshal([]byte(data), &a); err != nil {
						t.Fatalf("attempt line %q: %v", l, err)
					}
					as = append(as, a)
				}
			}
			if len(as) == 0 {
				t.Fatalf("%v reported no attempts%s", c, c.Diag())
			}
			for i, a := range as {
				what := fmt.Sprintf("Start with %d descriptors free", a.Free)
				if a.Err != "" {
					what += ": " + a.Err
					t.Logf("%s", what)
				}
				switch {
				case a.Panic != "":
					t.Errorf("%s: panic", what)
				case a.Err == "" && i < len(as)-1, a.Err != "" && i == len(as)-1:
					t.Errorf("%s: want it to fail with fewer descriptors and succeed with more", what)
				case a.Err != "" && (!a.TooManyFiles || !a.EMFILE || a.InvalidArgs):
					t.Errorf("%s (ErrTooManyFiles %v, EMFILE %v, ErrInvalidArgs %v); want ErrTooManyFiles and EMFILE, not ErrInvalidArgs", what, a.TooManyFiles, a.EMFILE, a.InvalidArgs)
				case a.Err != "" && (!strings.Contains(a.Err, "RLIMIT_NOFILE") || !strings.Contains(a.Err, "ulimit -n")):
					t.Errorf("%s; want the limit and how to raise it", what)
				}
				if a.Wait != "" {
					t.Errorf("%s: the child: %s", what, a.Wait)
				}
				if len(a.Leaked) > 0 {
					t.Errorf("%s: descriptors changed: %v", what, a.Leaked)
				}
				if a.Goroutines > 0 {
					t.Errorf("%s: %d goroutines left running", what, a.Goroutines)
				}
				if len(a.Children) > 0 {
					t.Errorf("%s: children left (pid:state): %v", what, a.Children)
				}
			}
			if last := as[len(as)-1]; last.Free == 0 && last.Err == "" {
				t.Errorf("Start succeeded without a free descriptor")
			}
			t.Logf("Start (%s) fails with up to %d descriptors free", call, as[len(as)-1].Free-1)
		})
	}
}

// starved fails as a function does that runs out of descriptors.
var starved = proc.Define("starved", func(ctx context.Context) error {
	release, err := testutil.Squeeze(0)
	if err != nil {
		return err
	}
	defer release()
	q, err := mpq.New(&mpq.Options{Capacity: 64 << 10})
	if err == nil {
		q.Close()
		return errors.New("New succeeded without a free descriptor")
	}
	return err
})

// A child's refused resource crosses to the parent: Wait's error matches
// the sentinel the child's did.
func TestLimitErrorTravels(t *testing.T) {
	testutil.CheckGoroutines(t)
	err := wait(t, start(t, starved, nil))
	if !errors.Is(err, mpq.ErrTooManyFiles) {
		t.Fatalf("Wait: %v; want an error matching mpq.ErrTooManyFiles", err)
	}
	if !strings.Contains(err.Error(), "RLIMIT_NOFILE") {
		t.Errorf("Wait: %v; want the child's message", err)
	}
}

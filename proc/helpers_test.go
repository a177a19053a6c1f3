package proc_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// TestMain makes the test binary run the functions of child processes.
func TestMain(m *testing.M) {
	proc.Main()
	// A race-enabled child would sleep 1s at exit for late race reports.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// timeout bounds every wait of these tests: generous, for slow CI machines
// running -race.
const timeout = 60 * time.Second

// newQueue returns an anonymous queue closed when the test ends.
func newQueue(t testing.TB) *mpq.Queue {
	t.Helper()
	q, err := mpq.New(&mpq.Options{Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// start starts f and makes sure the child is gone when the test ends.
func start(t testing.TB, f *proc.Func, opts *proc.Options, args ...any) *proc.Process {
	t.Helper()
	p, err := f.StartWith(t.Context(), opts, args...)
	if err != nil {
		t.Fatalf("start %s: %v", f.Name(), err)
	}
	t.Cleanup(func() {
		p.Kill()
		select {
		case <-p.Done():
		case <-time.After(timeout):
			t.Errorf("%v not reaped %v after SIGKILL", p, timeout)
		}
	})
	return p
}

// wait waits for p and returns what Wait returns; it kills p and fails the
// test if p runs for longer than timeout.
func wait(t testing.TB, p *proc.Process) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Wait()
	case <-time.After(timeout):
		p.Kill()
		t.Fatalf("%v still running after %v; killed it", p, timeout)
		return nil
	}
}

// exitError returns err as an *ExitError, failing the test if it is not one.
func exitError(t testing.TB, err error) *proc.ExitError {
	t.Helper()
	var e *proc.ExitError
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T); want an *proc.ExitError", err, err)
	}
	return e
}

// get returns the next message of q as a string, failing the test after
// timeout.
func get(t testing.TB, q *mpq.Queue) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	msg, err := q.Get(ctx)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return string(msg)
}

// put puts a formatted message into q, for a child's function.
func put(ctx context.Context, q *mpq.Queue, format string, args ...any) error {
	return q.Put(ctx, fmt.Appendf(nil, format, args...))
}

// putGob puts v into q encoded with gob, which keeps any bytes of a string.
func putGob(ctx context.Context, q *mpq.Queue, v any) error {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return err
	}
	return q.Put(ctx, b.Bytes())
}

// getGob gets a message from q and decodes it with gob into v.
func getGob(t testing.TB, q *mpq.Queue, v any) {
	t.Helper()
	if err := gob.NewDecoder(strings.NewReader(get(t, q))).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// fdCount returns the number of descriptors this process has open.
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents) - 1 // ReadDir's own descriptor
}

// procStat returns the state and parent of process pid from
// /proc/PID/stat, and false if there is no such process.
func procStat(pid int) (state byte, ppid int, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// children returns the processes whose parent is this process, with their
// states.
func children(t testing.TB) map[int]byte {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	kids := map[int]byte{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(pid); ok && ppid == os.Getpid() {
			kids[pid] = state
		}
	}
	return kids
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueIn returns a named queue in a private directory of the test.
func queueIn(t testing.TB, name string) *mpq.Queue {
	t.Helper()
	q, err := mpq.Open(name, &mpq.Options{Dir: filepath.Join(t.TempDir(), "q"), Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// unixFcntl returns the descriptor flags of fd.
func unixFcntl(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0) }

// runtimeGoexit ends the calling goroutine.
func runtimeGoexit() { runtime.Goexit() }

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
	helper "github.com/mpq-go/mpq/internal/testutil"
)

// envQueue names the queue of $MPQ_DIR a lock-holding helper opens.
const envQueue = "MPQ_TEST_QUEUE"

func init() {
	helper.Register("hold-put", func() error { return holdLock(ring.HookPut) })
	helper.Register("hold-get", func() error { return holdLock(ring.HookGet) })
}

// holdLock opens the queue $MPQ_TEST_QUEUE of $MPQ_DIR and puts a message
// into it (point ring.HookPut) or gets one (ring.HookGet), stopping for
// good halfway, holding the lock, after saying "stuck".
func holdLock(point string) error {
	ring.TestHook = func(p string) {
		if p == point {
			helper.Say("stuck")
			helper.BlockForever()
		}
	}
	q, err := mpq.Open(os.Getenv(envQueue), &mpq.Options{Dir: os.Getenv("MPQ_DIR"), NoCreate: true})
	if err != nil {
		return err
	}
	if point == ring.HookPut {
		return q.Put(context.Background(), []byte("held by a stopped producer"))
	}
	_, err = q.Get(context.Background())
	return err
}

// stoppedHolder starts a helper that takes the lock of queue name in dir
// (role hold-put or hold-get) and stops it there with SIGSTOP, as a user
// stops a process with Ctrl+Z or a debugger does. It returns its PID.
func stoppedHolder(t *testing.T, dir, name, role string) int {
	t.Helper()
	c := helper.Start(t, role, helper.Env("MPQ_DIR="+dir, envQueue+"="+name))
	c.Expect("stuck", 30*time.Second)
	pid := c.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.HasPrefix(procState(pid), "T"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v: state %q 10s after SIGSTOP; want T", c, procState(pid))
		}
	}
	return pid
}

// waitQueue waits until ready reports true of queue name in dir.
func waitQueue(t *testing.T, dir, name string, ready func(mpq.Stats) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s, err := mpq.Inspect(name, &mpq.Options{Dir: dir})
		if err == nil && ready(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s not as wanted after 10s: %v (error %v)", name, s, err)
		}
	}
}

// attached is a waitQueue condition: n processes have the queue open.
func attached(n int) func(mpq.Stats) bool {
	return func(s mpq.Stats) bool { return len(s.Procs) == n }
}

// terminated runs mpq with args in dir until ready reports true of queue
// name (say, that mpq has it open), then sends it SIGTERM, and returns its
// exit status and standard error. It fails the test if mpq does not end
// within 10s.
func terminated(t *testing.T, dir, name string, ready func(mpq.Stats) bool, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(mpqBin, append([]string{"--dir", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	waitQueue(t, dir, name, ready)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("mpq %q still running 10s after SIGTERM", args)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// While a stopped process holds the producer lock, put and seal say so,
// with its PID and state, on --timeout and on SIGTERM; neither says the
// queue is full, and seal does not hang.
func TestStoppedProducer(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("j", &mpq.Options{Dir: dir, Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	pid := stoppedHolder(t, dir, "j", "hold-put")
	holds := fmt.Sprintf("process %d (T (stopped)) holds the producer lock; it lets go once it runs again (kill -CONT %d)", pid, pid)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"put", "j", "x", "--timeout", "100ms"}, "put into j: message 1 not put within 100ms (0 put), though the queue has room: " + holds},
		{[]string{"seal", "j", "--timeout", "100ms"}, "seal of queue j timed out after 100ms (--timeout): it was waiting for the producer lock: " + holds},
		{[]string{"put", "j", "x", "--seal", "--timeout", "100ms"}, "put into j: message 1 not put within 100ms"},
	} {
		code, stderr := runMPQ(t, dir, nil, tc.args...)
		if code != exitTimeout || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "full") {
			t.Errorf("mpq %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitTimeout, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"seal", "j"}, "seal of queue j interrupted by SIGTERM: it was waiting for the producer lock: " + holds},
		{[]string{"put", "j", "x"}, "put into j interrupted by SIGTERM: 0 put; message 1 was waiting, though the queue has room: " + holds},
	} {
		code, stderr := terminated(t, dir, "j", attached(2), tc.args...)
		if code != 128+int(syscall.SIGTERM) || !strings.Contains(stderr, tc.want) {
			t.Errorf("mpq %q, then SIGTERM: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, 128+int(syscall.SIGTERM), tc.want)
		}
	}
	s, err := mpq.Inspect("j", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sealed || s.Puts != 0 {
		t.Errorf("queue after it all: sealed %v, %d puts; want neither", s.Sealed, s.Puts)
	}
}

// While a stopped process holds the consumer lock, get says so, with its
// PID and state, and how many messages wait, instead of "no message".
func TestStoppedConsumer(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("k", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, m := range []string{"a", "b"} {
		if err := q.Put(t.Context(), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	pid := stoppedHolder(t, dir, "k", "hold-get")
	holds := fmt.Sprintf("process %d (T (stopped)) holds the consumer lock; it lets go once it runs again (kill -CONT %d)", pid, pid)

	code, stderr := runMPQ(t, dir, nil, "get", "k", "--timeout", "100ms")
	want := "get from k: no message taken within 100ms (got 0 of 1), though 2 messages wait: " + holds
	if code != exitTimeout || !strings.Contains(stderr, want) {
		t.Errorf("get --timeout 100ms: exit %d, stderr %q; want %d and %q", code, stderr, exitTimeout, want)
	}
	code, stderr = terminated(t, dir, "k", attached(3), "get", "k", "-n", "2")
	want = "get from k interrupted by SIGTERM: got 0 of 2; waiting while " + fmt.Sprintf("process %d (T (stopped)) holds the consumer lock", pid)
	if code != 128+int(syscall.SIGTERM) || !strings.Contains(stderr, want) {
		t.Errorf("get -n 2, then SIGTERM: exit %d, stderr %q; want %d and %q", code, stderr, 128+int(syscall.SIGTERM), want)
	}
	if n := q.Len(); n != 2 {
		t.Errorf("%d messages left; want 2", n)
	}
}

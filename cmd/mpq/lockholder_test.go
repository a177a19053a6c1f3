package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// churner opens queue name of dir, puts backlog small messages into it,
// then puts a message of the largest size the queue takes and gets one,
// over and over, until it is killed: most of the time it holds the
// producer or the consumer lock, and stoppedHolder stops it there.
var churner = proc.Define("churner", func(ctx context.Context, dir, name string, backlog int) error {
	q, err := mpq.Open(name, &mpq.Options{Dir: dir, NoCreate: true})
	if err != nil {
		return err
	}
	defer q.Close()
	for i := range backlog {
		if err := q.Put(ctx, []byte{byte('a' + i)}); err != nil {
			return err
		}
	}
	big := make([]byte, q.Stats().MaxMessage)
	for {
		if err := q.Put(ctx, big); err != nil {
			return err
		}
		if _, err := q.Get(ctx); err != nil {
			return err
		}
	}
})

// stoppedHolder starts a churner on queue name in dir with backlog
// messages and stops it with SIGSTOP, as a user stops a process with
// Ctrl+Z or a debugger does, until Inspect shows it stopped holding the
// lock: the producer lock if put, else the consumer lock. It lets it run
// again with SIGCONT between attempts, and gives up after 500. It returns
// the churner's PID and the queue as it stands stopped.
func stoppedHolder(t *testing.T, dir, name string, backlog int, put bool) (int, mpq.Stats) {
	t.Helper()
	p, err := churner.Start(t.Context(), dir, name, backlog)
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT); p.Kill(); p.Wait() })
	for attempt := 0; attempt < 500; attempt++ {
		time.Sleep(time.Duration(attempt%7) * time.Millisecond)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.HasPrefix(procState(pid), "T"); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("churner %d: state %q 10s after SIGSTOP; want T", pid, procState(pid))
			}
		}
		s, err := mpq.Inspect(name, &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range s.Procs {
			if pr.PID == pid && (put && pr.PutLock || !put && pr.GetLock) {
				return pid, s
			}
		}
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("churner %d never stopped holding the lock (put %v) in 500 attempts", pid, put)
	return 0, mpq.Stats{}
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
	createQueue(t, "j", &mpq.Options{Dir: dir, Capacity: 64 << 10}).Close()
	pid, stopped := stoppedHolder(t, dir, "j", 0, true)
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
	if s.Sealed || s.Puts != stopped.Puts {
		t.Errorf("queue after it all: sealed %v, %d puts; want unsealed, and the %d puts of the stopped churner", s.Sealed, s.Puts, stopped.Puts)
	}
}

// While a stopped process holds the consumer lock, get says so, with its
// PID and state, and how many messages wait, instead of "no message".
func TestStoppedConsumer(t *testing.T) {
	dir := t.TempDir()
	q := createQueue(t, "k", &mpq.Options{Dir: dir})
	pid, stopped := stoppedHolder(t, dir, "k", 2, false)
	if stopped.Len < 2 {
		t.Fatalf("%d messages wait while the churner is stopped; want its 2 and more", stopped.Len)
	}
	holds := fmt.Sprintf("process %d (T (stopped)) holds the consumer lock; it lets go once it runs again (kill -CONT %d)", pid, pid)

	code, stderr := runMPQ(t, dir, nil, "get", "k", "--timeout", "100ms")
	want := fmt.Sprintf("get from k: no message taken within 100ms (got 0 of 1), though %d messages wait: %s", stopped.Len, holds)
	if code != exitTimeout || !strings.Contains(stderr, want) {
		t.Errorf("get --timeout 100ms: exit %d, stderr %q; want %d and %q", code, stderr, exitTimeout, want)
	}
	code, stderr = terminated(t, dir, "k", attached(3), "get", "k", "-n", "2")
	want = "get from k interrupted by SIGTERM: got 0 of 2; waiting while " + fmt.Sprintf("process %d (T (stopped)) holds the consumer lock", pid)
	if code != 128+int(syscall.SIGTERM) || !strings.Contains(stderr, want) {
		t.Errorf("get -n 2, then SIGTERM: exit %d, stderr %q; want %d and %q", code, stderr, 128+int(syscall.SIGTERM), want)
	}
	if n := q.Len(); n != stopped.Len {
		t.Errorf("%d messages left; want the %d there were", n, stopped.Len)
	}
}

// openLockHolder removes queue name of dir with RemoveIf, whose function
// never returns: it holds the queue's open lock until it is killed.
var openLockHolder = proc.Define("open-lock-holder", func(ctx context.Context, dir, name string, held *mpq.Queue) error {
	return mpq.RemoveIf(name, &mpq.Options{Dir: dir}, func(mpq.Stats) error {
		held.Put(ctx, []byte("holding"))
		<-ctx.Done()
		return ctx.Err()
	})
})

// TestStoppedOpenLockHolder: a process stopped (SIGSTOP) while it holds a
// queue's open lock makes put and get wait for the queue to open only as
// long as --timeout says, then exit with status 4 saying why.
func TestStoppedOpenLockHolder(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("q", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	held, err := mpq.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	p, err := openLockHolder.Start(t.Context(), dir, "q", held)
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT); p.Kill(); p.Wait() })
	if _, err := held.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"put", "q", "m", "--timeout", "300ms"},
		{"get", "q", "--timeout", "300ms"},
	} {
		code, stderr := runMPQ(t, dir, nil, args...)
		if code != exitTimeout || !strings.Contains(stderr, "did not open within 300ms") {
			t.Errorf("mpq %v with a stopped process holding the open lock: exit %d, %q; want exit %d, did not open within 300ms", args, code, stderr, exitTimeout)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"mpq"
)

// runMPQ runs the real binary with args in the queue directory dir and
// returns its exit status and standard error.
func runMPQ(t *testing.T, dir string, stdout *os.File, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpqBin, append([]string{"--dir", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("mpq %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// A get whose output fails says how many messages it took and lost, and
// fails, with --follow too.
func TestGetOutputFails(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full to write to: %v", err)
	}
	defer full.Close()
	dir := t.TempDir()
	q, err := mpq.Create("j", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, m := range []string{"a", "b", "c"} {
		if err := q.Put(t.Context(), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	q.Seal()
	code, stderr := runMPQ(t, dir, full, "get", "j", "--follow")
	if code != exitFailure || !strings.Contains(stderr, "get from j: writing the output: ") || !strings.Contains(stderr, "(1 taken messages not written)") {
		t.Errorf("get --follow >/dev/full: exit %d, stderr %q; want 1 and the message lost", code, stderr)
	}
	// --follow flushed the first message before taking the next.
	if got := q.Len(); got != 2 {
		t.Errorf("after the failed write, %d messages left; want 2", got)
	}
	code, stderr = runMPQ(t, dir, full, "get", "j", "-n", "2")
	if code != exitFailure || !strings.Contains(stderr, "(2 taken messages not written)") {
		t.Errorf("get -n 2 >/dev/full: exit %d, stderr %q", code, stderr)
	}
}

// An interrupt ends a put that waits on its standard input, with 130, and
// what it put before stays put.
func TestPutInterrupted(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("j", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	cmd := exec.Command(mpqBin, "--dir", dir, "put", "j", "--lines")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	defer in.Close()
	in.Write([]byte("one\ntwo\n"))
	for deadline := time.Now().Add(10 * time.Second); q.Len() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("put took %d lines; want 2", q.Len())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("put still running 10 s after SIGINT, with its input open")
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("put exited with %d after SIGINT; want 130", code)
	}
	if got := q.Len(); got != 2 {
		t.Errorf("%d messages after the interrupted put; want 2", got)
	}
}

// A queue whose name is not UTF-8 is left out of the metrics and counted;
// the others are still served.
func TestServeNonUTF8Name(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"good", "bad\xff"} {
		q, err := mpq.Create(name, &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		q.Close()
	}
	var log bytes.Buffer
	c := newQueueCollector(dir, &log)
	want := `
# HELP mpq_scrape_errors_total Times a queue, or the directory, could not be read for a scrape (the queue is then left out of it).
# TYPE mpq_scrape_errors_total counter
mpq_scrape_errors_total 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "mpq_scrape_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "mpq_queue_messages"); n != 1 {
		t.Errorf("%d queues have mpq_queue_messages; want 1 (good)", n)
	}
	if !strings.Contains(log.String(), "is not valid UTF-8") {
		t.Errorf("log %q does not say why the queue is left out", log.String())
	}
}

// An empty standard input puts nothing.
func TestPutEmptyInput(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("j", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	cmd := exec.Command(mpqBin, "--dir", dir, "put", "j")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "standard input is empty, nothing put") {
		t.Errorf("put of empty input: %v, %s", err, out)
	}
	if q.Len() != 0 {
		t.Errorf("queue holds %d messages; want 0", q.Len())
	}
}

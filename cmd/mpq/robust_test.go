package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mpq-go/mpq"
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

// A standard input larger than the queue's maximum message is refused
// once max+1 bytes are read, not read to its end: put reads no more than
// the limit and what a pipe holds.
func TestPutInputTooLarge(t *testing.T) {
	dir := t.TempDir()
	const maxMsg = 64 << 10
	q, err := mpq.Create("j", &mpq.Options{Dir: dir, Capacity: 1 << 20, MaxMessage: maxMsg})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, args := range [][]string{{"put", "j"}, {"put", "j", "--file", "-"}} {
		cmd := exec.Command(mpqBin, append([]string{"--dir", dir}, args...)...)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The generator: up to 256 MiB, as much as put takes, counted.
		const total = 256 << 20
		written := make(chan int64, 1)
		go func() {
			chunk := make([]byte, 1<<20)
			var n int64
			for n < total {
				k, err := in.Write(chunk)
				n += int64(k)
				if err != nil {
					break
				}
			}
			in.Close()
			written <- n
		}()
		err = cmd.Wait()
		n := <-written
		want := fmt.Sprintf("message 1 (more than %d bytes of standard input, read no further) is larger than queue j takes (%d bytes)", maxMsg, maxMsg)
		if code := cmd.ProcessState.ExitCode(); code != exitFailure || !strings.Contains(stderr.String(), want) {
			t.Errorf("mpq %q of 256 MiB: %v, stderr %q; want exit 1 and %q", args, err, stderr.String(), want)
		}
		// What put read, and what the pipe held when it exited (64 KiB,
		// at most 1 MiB as /proc/sys/fs/pipe-max-size allows).
		if n > maxMsg+1+(1<<20) {
			t.Errorf("mpq %q: took %d bytes of its input; want at most %d and a pipe's worth", args, n, maxMsg+1)
		}
	}
	if q.Len() != 0 {
		t.Errorf("queue holds %d messages; want 0", q.Len())
	}
}

// When the reader of get's output goes away, get says so and what it
// took and did not write, instead of dying of SIGPIPE: with messages
// coming (the write fails with EPIPE) and with none (it stops waiting).
func TestGetReaderGone(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("j", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n = 2000
	msg := bytes.Repeat([]byte("m"), 1000)
	for range n {
		if err := q.Put(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		want *regexp.Regexp
	}{
		// The write fails with EPIPE, or get sees the reader gone first.
		{"messages", regexp.MustCompile(`get from j: (writing the output: its reader went away \(broken pipe\); took (?P<taken>\d+) messages, wrote \d+, of which the reader may have left some unread \(1 taken messages not written\)|the reader of the output went away; took (?P<taken>\d+) messages, wrote them all)`)},
		{"idle", regexp.MustCompile(`get from j: the reader of the output went away; took (?P<taken>\d+) messages, wrote them all, of which the reader may have left some unread`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := q.Len()
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(mpqBin, "--dir", dir, "get", "j", "--follow")
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = pw, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			defer cmd.Process.Kill()
			// As head -c1 does: read a byte, then go.
			if _, err := pr.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if tc.name == "idle" {
				// Let get take the rest and wait on an empty queue.
				drained := make(chan struct{})
				go func() { io.Copy(io.Discard, pr); close(drained) }()
				defer func() { pr.Close(); <-drained }()
				waiting := func(s mpq.Stats) bool {
					for _, p := range s.Procs {
						if p.PID == cmd.Process.Pid && p.WaitingData {
							return true
						}
					}
					return false
				}
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
					s, err := mpq.Inspect("j", &mpq.Options{Dir: dir})
					if err == nil && s.Len == 0 && waiting(s) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("get took %d of %d messages in 10s, and waits for more: %v", before-s.Len, before, waiting(s))
					}
				}
			}
			pr.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("get --follow still running 10s after the reader of its output went away")
			}
			if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
				t.Fatalf("get killed by %v; stderr %q", ws.Signal(), stderr.String())
			}
			m := tc.want.FindStringSubmatch(stderr.String())
			if code := cmd.ProcessState.ExitCode(); code != exitFailure || m == nil {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.want)
			}
			// Every message taken is accounted for.
			var taken int
			for i, name := range tc.want.SubexpNames() {
				if name == "taken" && m[i] != "" {
					taken, _ = strconv.Atoi(m[i])
				}
			}
			if got := before - q.Len(); got != taken {
				t.Errorf("get says it took %d; the queue lost %d", taken, got)
			}
		})
	}
}

// get --follow ends on SIGTERM with 143, saying how many it got, having
// written each.
func TestGetFollowTerminated(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("j", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Put(t.Context(), []byte("one")); err != nil {
		t.Fatal(err)
	}
	// Once get has taken it (the queue is empty) and waits for more.
	code, stderr := terminated(t, dir, "j", func(s mpq.Stats) bool {
		return s.Len == 0 && len(s.Procs) == 2 && (s.Procs[0].WaitingData || s.Procs[1].WaitingData)
	}, "get", "j", "--follow")
	if want := "mpq: get from j interrupted by SIGTERM: got 1\n"; code != 143 || stderr != want {
		t.Errorf("get --follow, then SIGTERM: exit %d, stderr %q; want 143 and %q", code, stderr, want)
	}
}

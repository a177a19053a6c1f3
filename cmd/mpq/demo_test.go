package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoRun runs the real mpq with args, with $MPQ_DIR and $XDG_RUNTIME_DIR
// (the default queue directory's parent) naming empty directories, and
// checks that these are still empty when it is done. It returns the exit
// status, standard output and standard error.
func demoRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	queues, runtime := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpqBin, args...)
	cmd.Env = append(os.Environ(), "MPQ_DIR="+queues, "XDG_RUNTIME_DIR="+runtime)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("mpq %q: %v", args, err)
	}
	for _, dir := range []string{queues, runtime} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("mpq %q left %s in %s", args, e.Name(), dir)
		}
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// demoLines is the output of a demo, line by line.
type demoLines []string

// find returns the index of the first line matching the regular expression
// re, and its submatches; it fails the test if there is none.
func (l demoLines) find(t *testing.T, re string) (int, []string) {
	t.Helper()
	r := regexp.MustCompile("^" + re + "$")
	for i, line := range l {
		if m := r.FindStringSubmatch(line); m != nil {
			return i, m
		}
	}
	t.Fatalf("no line matches %s in:\n%s", re, strings.Join(l, "\n"))
	return 0, nil
}

// before checks that the line that matches first comes before the line
// that matches then.
func (l demoLines) before(t *testing.T, first, then string) {
	t.Helper()
	i, _ := l.find(t, first)
	j, _ := l.find(t, then)
	if i >= j {
		t.Errorf("%q (line %d) does not come before %q (line %d)", l[i], i+1, l[j], j+1)
	}
}

// started finds the parent's line "started FIRST PID and SECOND PID" and
// returns the two PIDs, checking that parent and children are three
// processes.
func (l demoLines) started(t *testing.T, parent, first, second string) (string, string) {
	t.Helper()
	_, m := l.find(t, `parent `+parent+`: started `+first+` (\d+) and `+second+` (\d+)`)
	a, b := m[1], m[2]
	if a == b || a == parent || b == parent {
		t.Errorf("parent %s, %s %s, %s %s: want three processes", parent, first, a, second, b)
	}
	return a, b
}

// checkQueueDemo checks the output of the queue demo: A, B and C go from a
// writer process to a reader process, neither of them the parent. It
// returns the writer's and reader's process IDs.
func checkQueueDemo(t *testing.T, out demoLines, parent string) (writer, reader string) {
	t.Helper()
	w, r := out.started(t, parent, "writer", "reader")
	// Only what causes what is checked: the reader may get C before or
	// after the parent seals the queue.
	for _, v := range []string{"A", "B", "C"} {
		out.before(t, `writer `+w+`: putting `+v, `reader `+r+` got `+v+` from writer `+w)
	}
	out.before(t, `reader `+r+` got A from writer `+w, `reader `+r+` got B from writer `+w)
	out.before(t, `reader `+r+` got B from writer `+w, `reader `+r+` got C from writer `+w)
	out.before(t, `writer `+w+`: putting C`, `parent `+parent+`: writer done, sealing the queue`)
	out.before(t, `parent `+parent+`: writer done, sealing the queue`, `reader `+r+`: queue sealed and empty, done`)
	out.before(t, `reader `+r+`: queue sealed and empty, done`, `parent `+parent+`: reader done`)
	return w, r
}

// checkPipeDemo checks the output of the pipe demo: a sender process sends
// 0 to 4 to a receiver process, neither of them the parent, and closes its
// end. It returns the sender's and receiver's process IDs.
func checkPipeDemo(t *testing.T, out demoLines, parent string) (sender, receiver string) {
	t.Helper()
	s, r := out.started(t, parent, "sender", "receiver")
	for n := 0; n <= 4; n++ {
		out.before(t, fmt.Sprintf(`sender %s: sending %d`, s, n), fmt.Sprintf(`receiver %s: got %d`, r, n))
		if n > 0 {
			out.before(t, fmt.Sprintf(`receiver %s: got %d`, r, n-1), fmt.Sprintf(`receiver %s: got %d`, r, n))
		}
	}
	out.before(t, `receiver `+r+`: got 4`, `receiver `+r+`: sender closed its end, done`)
	out.before(t, `receiver `+r+`: sender closed its end, done`, `parent `+parent+`: both done`)
	return s, r
}

// checkPoolDemo checks the output of the pool demo: two workers, one of
// them killed and replaced, every result back. It returns the killed
// worker's and its replacement's process IDs.
func checkPoolDemo(t *testing.T, out demoLines, parent string) (killed, replacement string) {
	t.Helper()
	_, m := out.find(t, `parent `+parent+`: pool of workers (\d+) and (\d+), counting the primes below 3000 numbers`)
	a, b := m[1], m[2]
	_, k := out.find(t, `parent `+parent+`: killing worker (\d+) with SIGKILL, \d+ of 3000 tasks done`)
	_, e := out.find(t, `parent `+parent+`: all 3000 results back, in order and correct; worker (\d+) was replaced by (\d+); [01] task\(s\) run again, none lost`)
	if k[1] != a && k[1] != b || e[1] != k[1] || e[2] == a || e[2] == b || e[2] == parent {
		t.Errorf("workers %s and %s, killed %s, replaced by %s: want one of the two killed and a new process", a, b, k[1], e[2])
	}
	for _, w := range []string{a, b, e[2]} {
		out.find(t, `worker `+w+`: ready`)
	}
	return k[1], e[2]
}

// demoCheckGone checks that the demo's child processes are gone (reaped).
func demoCheckGone(t *testing.T, pids ...string) {
	t.Helper()
	for _, p := range pids {
		var pid int
		fmt.Sscan(p, &pid)
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d after the demo: %v; want it gone", pid, err)
		}
	}
}

func TestDemo(t *testing.T) {
	code, stdout, stderr := demoRun(t, "demo")
	if code != 0 || stderr != "" {
		t.Fatalf("mpq demo: exit status %d, stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	out := demoLines(strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"))
	_, m := out.find(t, `parent (\d+): started writer \d+ and reader \d+`)
	parent := m[1]
	w, r := checkQueueDemo(t, out, parent)
	s, pr := checkPipeDemo(t, out, parent)
	if slices.Contains([]string{w, r}, s) || slices.Contains([]string{w, r}, pr) {
		t.Errorf("pipe processes %s, %s are among the queue demo's %s, %s", s, pr, w, r)
	}
	k, rep := checkPoolDemo(t, out, parent)
	out.before(t, `== queue: .*`, `parent \d+: started writer \d+ and reader \d+`)
	out.before(t, `parent \d+: reader done`, `== pipe: .*`)
	out.before(t, `parent \d+: both done`, `== pool: .*`)
	out.before(t, `parent \d+: all 3000 results back.*`, `What you saw: .*`)
	last := out[len(out)-2:]
	for _, want := range []string{"writer " + w, "reader " + r, "sender " + s, "receiver " + pr, "worker " + k, "worker " + rep,
		"examples/queue, examples/pipe and examples/pool", "go doc github.com/mpq-go/mpq"} {
		if !strings.Contains(strings.Join(last, "\n"), want) {
			t.Errorf("the last lines lack %q:\n%s", want, strings.Join(last, "\n"))
		}
	}
	demoCheckGone(t, w, r, s, pr, k, rep)
}

func TestDemoOne(t *testing.T) {
	for _, which := range []string{"queue", "pipe", "pool"} {
		t.Run(which, func(t *testing.T) {
			code, stdout, stderr := demoRun(t, "demo", which)
			if code != 0 || stderr != "" {
				t.Fatalf("mpq demo %s: exit status %d, stderr:\n%s\nstdout:\n%s", which, code, stderr, stdout)
			}
			out := demoLines(strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"))
			_, m := out.find(t, `parent (\d+): (started|pool of) .*`)
			parent := m[1]
			var a, b string
			switch which {
			case "queue":
				a, b = checkQueueDemo(t, out, parent)
			case "pipe":
				a, b = checkPipeDemo(t, out, parent)
			case "pool":
				a, b = checkPoolDemo(t, out, parent)
			}
			demoCheckGone(t, a, b)
			for _, other := range []string{"queue", "pipe", "pool"} {
				if other != which && (strings.Contains(stdout, "== "+other) || strings.Contains(stdout, "examples/"+other)) {
					t.Errorf("mpq demo %s shows the %s demo too:\n%s", which, other, stdout)
				}
			}
			out.find(t, `This is the code of examples/`+which+` in the mpq sources \(package github.com/mpq-go/mpq/examples\).*`)
		})
	}
}

func TestDemoUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "queues"}, `unknown demo "queues"`},
		{[]string{"demo", "queue", "pipe"}, "want at most one of queue, pipe or pool"},
		{[]string{"demo", "--bogus"}, "unknown flag"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := demoRun(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("mpq %q: exit status %d, stdout %q, stderr:\n%s\nwant status %d and %q on stderr only",
					tc.args, code, stdout, stderr, exitUsage, tc.want)
			}
		})
	}
}

func TestDemoHelp(t *testing.T) {
	code, stdout, stderr := demoRun(t, "demo", "--help")
	if code != 0 {
		t.Fatalf("mpq demo --help: exit status %d\n%s", code, stderr)
	}
	for _, want := range []string{"Examples:", "mpq demo queue", "examples/queue"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("mpq demo --help lacks %q:\n%s", want, stdout)
		}
	}
}

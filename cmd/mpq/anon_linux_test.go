package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// poolLabel is the label the child gives its queue, as a pool would.
const poolLabel = "pool sq: tasks"

// anonHolder makes the anonymous queues mpq ls should find in it: one
// labelled poolLabel with 3 messages, one without a label with 2, and a
// memfd named as a queue's, mpq:garbage, that holds no queue. It says so
// on ready, then holds them until it is stopped.
var anonHolder = proc.Define("anon-holder", func(ctx context.Context, ready *mpq.Queue) error {
	labelled, err := mpq.New(&mpq.Options{Label: poolLabel, Capacity: 64 << 10})
	if err != nil {
		return err
	}
	defer labelled.Close()
	unlabelled, err := mpq.New(&mpq.Options{Capacity: 64 << 10})
	if err != nil {
		return err
	}
	defer unlabelled.Close()
	for i := range 3 {
		if err := labelled.TryPut([]byte("task " + strconv.Itoa(i))); err != nil {
			return err
		}
	}
	for i := range 2 {
		if err := unlabelled.TryPut([]byte("other " + strconv.Itoa(i))); err != nil {
			return err
		}
	}
	fd, err := unix.MemfdCreate("mpq:garbage", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	garbage := os.NewFile(uintptr(fd), "memfd:mpq:garbage")
	defer garbage.Close()
	if _, err := garbage.Write([]byte(strings.Repeat("not a queue, just bytes. ", 3000))); err != nil {
		return err
	}
	if err := ready.Put(ctx, []byte("ready")); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
})

// startAnonHolder starts anonHolder and waits until it is ready; the
// returned function kills it and waits for it to exit.
func startAnonHolder(t *testing.T) (pid int, stop func()) {
	t.Helper()
	ready, err := mpq.New(&mpq.Options{Capacity: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	p, err := anonHolder.Start(t.Context(), ready)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			p.Kill()
			p.Wait()
		}
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := ready.Get(ctx); err != nil {
		t.Fatalf("waiting for the child to be ready: %v", err)
	}
	return p.Pid(), stop
}

// lsJSON runs mpq ls --json on the empty directory dir and returns the
// queues it lists of process pid (other tests' processes may hold theirs).
func lsJSON(t *testing.T, dir string, pid int) []queueJSON {
	t.Helper()
	code, out, errOut := mpqOutput(t, dir, "ls", "--json")
	if code != 0 {
		t.Fatalf("mpq ls --json: exit %d; want 0; stderr %q", code, errOut)
	}
	var all []queueJSON
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("mpq ls --json: %v in\n%s", err, out)
	}
	var mine []queueJSON
	for _, q := range all {
		if !q.Anonymous {
			t.Errorf("got %+v in an empty directory; want only anonymous queues", q)
		}
		if q.PID == pid {
			mine = append(mine, q)
		}
	}
	return mine
}

// byLabel returns the queue of qs labelled label, and if there are more,
// the one that is not empty.
func byLabel(t *testing.T, qs []queueJSON, label string) queueJSON {
	t.Helper()
	var found []queueJSON
	for _, q := range qs {
		if q.Label == label {
			found = append(found, q)
		}
	}
	for _, q := range found {
		if len(found) == 1 || q.Len > 0 {
			return q
		}
	}
	t.Fatalf("no queue labelled %q in %+v", label, qs)
	return queueJSON{}
}

// mpq ls and stat show the anonymous queues of a running process, as
// @PID:LABEL (or @PID:fdN), with their depth, and a memfd named as a
// queue's that is not one as unreadable; once the process exits, they are
// gone.
func TestAnonymousQueues(t *testing.T) {
	dir := t.TempDir()
	pid, stop := startAnonHolder(t)

	// The child holds a fourth, unlabelled and empty: ready, which
	// its parent has closed.
	mine := lsJSON(t, dir, pid)
	if len(mine) != 4 {
		t.Fatalf("mpq ls --json: got %d queues of the child %d: %+v; want 4", len(mine), pid, mine)
	}
	tasks := byLabel(t, mine, poolLabel)
	wantName := fmt.Sprintf("@%d:%s", pid, poolLabel)
	if tasks.Name != wantName || tasks.Len != 3 || tasks.Puts != 3 || tasks.Error != "" ||
		len(tasks.Procs) != 1 || tasks.Procs[0].PID != pid || !regexp.MustCompile(fmt.Sprintf(`^/proc/%d/fd/[0-9]+$`, pid)).MatchString(tasks.Path) {
		t.Errorf("got %+v; want %s at depth 3 with the child attached, read through /proc/%d/fd/N", tasks, wantName, pid)
	}
	other := byLabel(t, mine, "")
	m := regexp.MustCompile(fmt.Sprintf(`^@%d:fd([0-9]+)$`, pid)).FindStringSubmatch(other.Name)
	if m == nil || other.Len != 2 || other.Error != "" {
		t.Errorf("got %+v; want @%d:fdN at depth 2", other, pid)
	} else if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, m[1])); err != nil || link != "/memfd:mpq (deleted)" {
		t.Errorf("%s: descriptor %s of the child is %q, %v; want the unlabelled queue's memfd", other.Name, m[1], link, err)
	}
	garbage := byLabel(t, mine, "garbage")
	if garbage.Name != fmt.Sprintf("@%d:garbage", pid) || !strings.Contains(garbage.Error, mpq.ErrCorrupt.Error()) && !strings.Contains(garbage.Error, mpq.ErrIncompatible.Error()) {
		t.Errorf("got %+v; want @%d:garbage with the error that it is no queue", garbage, pid)
	}

	// The text of ls: a row each, after the directory's (it has none).
	code, out, errOut := mpqOutput(t, dir, "ls")
	if code != 0 || !strings.Contains(errOut, "no queues in "+dir) {
		t.Errorf("mpq ls: exit %d, stderr %q; want 0 and that the directory has no queues", code, errOut)
	}
	for _, want := range []string{
		`(?m)^` + regexp.QuoteMeta(wantName) + ` +3 +`,
		`(?m)^` + regexp.QuoteMeta(other.Name) + ` +2 +`,
		`(?m)^@` + strconv.Itoa(pid) + `:garbage +- +- +- +- +- +- +unreadable: `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("mpq ls says\n%s\nwant a line matching %s", out, want)
		}
	}
	code, out, _ = mpqOutput(t, dir, "ls", "--anonymous=false")
	if code != 0 || strings.Contains(out, "@") {
		t.Errorf("mpq ls --anonymous=false: exit %d, stdout\n%s\nwant 0 and no anonymous queue", code, out)
	}

	// stat of the name ls shows, of the fdN form of the same queue, and
	// of the garbage.
	fd := strings.TrimPrefix(tasks.Path, fmt.Sprintf("/proc/%d/fd/", pid))
	for _, name := range []string{wantName, fmt.Sprintf("@%d:fd%s", pid, fd)} {
		code, out, errOut = mpqOutput(t, dir, "stat", name)
		for _, want := range []string{"queue       " + wantName + "\n", "label       " + poolLabel + "\n", "depth       3 messages\n", "processes   1 attached\n", "anonymous"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("mpq stat %q: exit %d, stderr %q, stdout\n%s\nwant 0 and a line with %q", name, code, errOut, out, want)
			}
		}
	}
	code, out, errOut = mpqOutput(t, dir, "stat", wantName, "--json")
	var j queueJSON
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || j.Name != wantName || j.Label != poolLabel || !j.Anonymous || j.PID != pid || j.Len != 3 {
		t.Errorf("mpq stat --json: exit %d, %v, stderr %q; got %+v; want %s, labelled, anonymous, pid %d, depth 3", code, err, errOut, j, wantName, pid)
	}
	code, _, errOut = mpqOutput(t, dir, "stat", garbage.Name)
	if code != exitFailure || !strings.Contains(errOut, "anonymous queue "+garbage.Name+" (/proc/") || !strings.Contains(errOut, "cannot be read") {
		t.Errorf("mpq stat %s: exit %d, stderr %q; want %d, cannot be read", garbage.Name, code, errOut, exitFailure)
	}

	// Gone with the child.
	stop()
	if mine := lsJSON(t, dir, pid); len(mine) != 0 {
		t.Errorf("after the child exited, mpq ls --json lists %+v; want none of its queues", mine)
	}
	if code, _, errOut := mpqOutput(t, dir, "stat", wantName); code != exitMissing || !strings.Contains(errOut, "no anonymous queue "+wantName) {
		t.Errorf("mpq stat %s after the child exited: exit %d, stderr %q; want %d, no anonymous queue", wantName, code, errOut, exitMissing)
	}
}

// mpq top shows the anonymous queues of a running process after the
// directory's, counted apart in the header, an unreadable one with its
// error.
func TestAnonymousQueuesTop(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil && os.Getenv("CI") == "true" {
		t.Fatal("tmux is not installed: the terminal tests of mpq top drive it in tmux")
	}
	dir := t.TempDir()
	createQueue(t, "jobs", &mpq.Options{Dir: dir}).Close()
	pid, _ := startAnonHolder(t)
	wantName := fmt.Sprintf("@%d:%s", pid, poolLabel)
	tm := startTopTmux(t, 200, 100, mpqBin, "top", "--dir", dir, "--interval", "200ms")
	name := strings.Fields(wantName)
	other := fmt.Sprintf("@%d:fd", pid)
	screen := tm.waitFor(10*time.Second, wantName+" at depth 3", func(s string) bool {
		return topHasLine(s, append(name, "3")...) && regexp.MustCompile(`(?m)^`+other+`[0-9]+ +2 `).MatchString(s) &&
			regexp.MustCompile(`(?m)^@`+strconv.Itoa(pid)+`:garbage +.*(corrupt|not a queue)`).MatchString(s)
	})
	t.Logf("the screen:\n%s", screen)
	if !regexp.MustCompile(`  1 queue  [0-9]+ anonymous  `).MatchString(screen) {
		t.Errorf("got the screen\n%s\nwant the header to count 1 queue and the anonymous ones", screen)
	}
	if lines := strings.Split(screen, "\n"); len(lines) < 4 || !strings.HasPrefix(lines[3], "jobs ") {
		t.Errorf("got the screen\n%s\nwant the directory's queue first", screen)
	}
	if _, err := tm.tmux("send-keys", "-t", tm.target, "q"); err != nil {
		t.Fatal(err)
	}
	if code := tm.waitExit(10 * time.Second); code != 0 {
		t.Errorf("mpq top: got exit status %v; want 0", code)
	}
}

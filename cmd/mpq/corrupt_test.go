package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
)

// A queue found corrupt ends the mpq put waiting for room in it and the
// mpq get waiting for a message, with status 1 and an error saying what
// was found and how to fix it; mpq stat (and stat --json, and ls) say it
// is corrupt, and how to fix it.
func TestStatCorrupt(t *testing.T) {
	dir := t.TempDir()
	q := createQueue(t, "j", &mpq.Options{Dir: dir, Capacity: 4096, MaxMessage: 256})
	for q.TryPut([]byte("filler")) == nil {
	}
	createQueue(t, "e", &mpq.Options{Dir: dir})

	start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(mpqBin, append([]string{"--dir", dir}, args...)...)
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stderr = strings.NewReader("one more\n"), &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &stderr
	}
	put, putErr := start("put", "j")
	get, getErr := start("get", "e")
	// Both asleep in the queue before the damage.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		sj, err1 := mpq.Inspect("j", &mpq.Options{Dir: dir})
		se, err2 := mpq.Inspect("e", &mpq.Options{Dir: dir})
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if slices.ContainsFunc(sj.Procs, func(p mpq.Attached) bool { return p.PID == put.Process.Pid && p.WaitingSpace }) &&
			slices.ContainsFunc(se.Procs, func(p mpq.Attached) bool { return p.PID == get.Process.Pid && p.WaitingData }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mpq put and get never slept: %+v, %+v", sj.Procs, se.Procs)
		}
	}
	// Garbage in the header of j's record at head, and in e's tail.
	for _, d := range []struct {
		name string
		off  int64
	}{{"j", ring.RingOffset}, {"e", 128}} {
		f, err := os.OpenFile(filepath.Join(dir, d.name+".mpq"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0xef, 0xbe, 0xad, 0xde, 0xef, 0xbe, 0xad, 0xde}, d.off); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if _, err := q.TryGet(); !errors.Is(err, mpq.ErrCorrupt) {
		t.Fatalf("TryGet of the damaged record: got %v; want %v", err, mpq.ErrCorrupt)
	}
	for _, c := range []struct {
		cmd    *exec.Cmd
		stderr *bytes.Buffer
	}{{put, putErr}, {get, getErr}} {
		c.cmd.Wait()
		if code := c.cmd.ProcessState.ExitCode(); code != exitFailure || !strings.Contains(c.stderr.String(), "queue file is corrupt") ||
			!strings.Contains(c.stderr.String(), "mpq rm --force") {
			t.Errorf("%v: exit %d, stderr %q; want %d and the corrupt state", c.cmd.Args, code, c.stderr, exitFailure)
		}
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"stat", "j"}, []string{"\nCORRUPT      record at 0 has state 15 (found by process", "until it is removed", "mpq rm --force j", "\nflags        CORRUPT"}},
		{[]string{"stat", "e"}, []string{"\nCORRUPT      head/tail positions", "mpq rm --force e"}},
		{[]string{"stat", "j", "--json"}, []string{`"corrupt": "record at 0 has`}},
		{[]string{"ls"}, []string{"CORRUPT"}},
	} {
		out, err := exec.Command(mpqBin, append([]string{"--dir", dir}, tc.args...)...).CombinedOutput()
		if err != nil {
			t.Errorf("mpq %v: %v\n%s", tc.args, err, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("mpq %v says\n%s\nwant it to say %q", tc.args, out, w)
			}
		}
	}
}

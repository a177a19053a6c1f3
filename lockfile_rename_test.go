//go:build linux

package mpq_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// TestLockFileFollowsName: a queue file renamed (or hard-linked) in its
// directory while a process has it open keeps its lock file, which is
// named after the queue's id: a process opening it by its new name shares
// the first one's locks, rather than taking its slot or, for a durable
// queue, finding itself alone and recovering the queue under the live
// process.
func TestLockFileFollowsName(t *testing.T) {
	for _, how := range []string{"rename", "link"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			opts := &mpq.Options{Dir: dir, Capacity: 64 << 10, Durable: true}
			q, err := mpq.Create("a", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			from, to := filepath.Join(dir, "a.mpq"), filepath.Join(dir, "b.mpq")
			if how == "rename" {
				err = os.Rename(from, to)
			} else {
				err = os.Link(from, to)
			}
			if err != nil {
				t.Fatal(err)
			}
			q2, err := mpq.Open("b", &mpq.Options{Dir: dir, NoCreate: true})
			if err != nil {
				t.Fatal(err)
			}
			defer q2.Close()
			st := q2.Stats()
			if len(st.Procs) != 2 {
				t.Errorf("after %s, two handles open: Stats.Procs = %v; want 2 entries (the second took the first's slot: the lock file is keyed by name)", how, st.Procs)
			}
			locks, _ := filepath.Glob(filepath.Join(dir, ".*.lock"))
			if len(locks) != 1 {
				t.Errorf("lock files for one queue file: %v; want 1", locks)
			}
		})
	}
}

// TestLockFileMovedAway: a queue file moved to another directory while a
// process (this one, or another) has it open finds no lock file there.
// Opening it is refused, naming the process, rather than done with a new
// lock file that the first process does not hold; once that process has
// closed it (or for a copy, which no process maps), it opens.
func TestLockFileMovedAway(t *testing.T) {
	for _, who := range []string{"this process", "another process"} {
		t.Run(who, func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			opts := &mpq.Options{Dir: a, Capacity: 64 << 10, Durable: true}
			q, err := mpq.Create("q", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			pid, done := os.Getpid(), func() { q.Close() }
			if who == "another process" {
				c := testutil.Start(t, "attach", namedQueue(a, "q"), testutil.Stdin())
				c.Expect("attached", 30*time.Second)
				pid = c.Pid()
				q.Close() // only the child has it open now
				done = func() { c.CloseStdin(); c.Succeed(30 * time.Second) }
			}
			if err := os.Rename(filepath.Join(a, "q.mpq"), filepath.Join(b, "q.mpq")); err != nil {
				t.Fatal(err)
			}
			_, err = mpq.Open("q", &mpq.Options{Dir: b, NoCreate: true})
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", pid)) {
				t.Fatalf("Open of the moved file while process %d has it open: %v; want fs.ErrNotExist naming it", pid, err)
			}
			if locks, _ := filepath.Glob(filepath.Join(b, ".*.lock")); len(locks) != 0 {
				t.Errorf("the refused Open left lock files %v", locks)
			}
			done()
			q2, err := mpq.Open("q", &mpq.Options{Dir: b, NoCreate: true})
			if err != nil {
				t.Fatalf("Open of the moved file once process %d closed it: %v", pid, err)
			}
			q2.Close()
		})
	}
}

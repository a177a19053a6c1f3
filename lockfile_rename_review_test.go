//go:build linux

package mpq_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mpq-go/mpq"
)

// TestLockFileFollowsName: the lock file is found by the queue file's
// name, not by the file, so a queue file renamed (or hard-linked) while a
// process has it open gets a second, fresh lock file under the new name:
// a process opening it by its new name takes the slot the first process
// holds (the ring then has one process where there are two) and, for a
// durable queue, finds itself "alone" and recovers the queue under the
// live process. Before format 3 the locks were in the file itself and
// followed it. Review finding.
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

package mpq_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("opener", runOpener)
}

// runOpener opens and closes the queue MPQ_TEST_NAME in MPQ_TEST_DIR
// (creating it if missing) for MPQ_TEST_MS milliseconds, checking each
// time that the queue it has open is the file in the directory. It says
// "opens N orphans M".
func runOpener() error {
	dir, name := os.Getenv(envDir), os.Getenv(envName)
	end := time.Now().Add(time.Duration(testutil.EnvInt("MPQ_TEST_MS", 1000)) * time.Millisecond)
	opens, orphans := 0, 0
	for time.Now().Before(end) {
		q, err := mpq.Open(name, &mpq.Options{Dir: dir, Capacity: 1 << 16})
		if err != nil {
			return err
		}
		opens++
		f, err := q.File()
		if err != nil {
			return err
		}
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(filepath.Join(dir, name+".mpq"))
		if err1 != nil || err2 != nil || !os.SameFile(fi, pi) {
			orphans++
		}
		f.Close()
		q.Close()
	}
	testutil.Say("opens %d orphans %d", opens, orphans)
	return nil
}

// RemoveIf never removes a queue from under a process that has it open,
// even one that attaches while RemoveIf looks: another process opens and
// closes the queue in a loop while this one removes it whenever it is
// idle.
func TestRemoveIfRacesOpen(t *testing.T) {
	dir := t.TempDir()
	c := testutil.Start(t, "opener", namedQueue(dir, "race"), testutil.Env("MPQ_TEST_MS=1500"))
	idle := func(s mpq.Stats) error {
		if len(s.Procs) > 0 {
			return errors.New("in use")
		}
		return nil
	}
	removed, refused := 0, 0
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
		switch err := mpq.RemoveIf("race", &mpq.Options{Dir: dir}, idle); {
		case err == nil:
			removed++
		case errors.Is(err, fs.ErrNotExist):
		case err.Error() == "in use":
			refused++
		default:
			t.Fatalf("RemoveIf: %v", err)
		}
	}
	line := c.Expect("opens ", 30*time.Second)
	var opens, orphans int
	if _, err := fmt.Sscanf(line, "opens %d orphans %d", &opens, &orphans); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d opens, %d removals, %d refusals", opens, removed, refused)
	if orphans != 0 {
		t.Errorf("%d of %d opens had a queue removed from under them", orphans, opens)
	}
	if removed == 0 || refused == 0 {
		t.Errorf("removed %d times, refused %d times: the race was not exercised", removed, refused)
	}
}

func TestRemoveIf(t *testing.T) {
	dir := t.TempDir()
	o := &mpq.Options{Dir: dir}
	q, err := mpq.Create("q", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Put(t.Context(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	no := errors.New("no")
	var seen mpq.Stats
	if err := mpq.RemoveIf("q", o, func(s mpq.Stats) error { seen = s; return no }); err != no {
		t.Errorf("RemoveIf refused: %v; want ok's error", err)
	}
	if seen.Len != 1 || len(seen.Procs) != 1 || seen.Procs[0].PID != os.Getpid() {
		t.Errorf("ok saw %+v; want 1 message and this process", seen)
	}
	if _, err := mpq.Inspect("q", o); err != nil {
		t.Errorf("queue gone after a refused RemoveIf: %v", err)
	}
	q.Close()
	if err := mpq.RemoveIf("q", o, func(mpq.Stats) error { return nil }); err != nil {
		t.Errorf("RemoveIf: %v", err)
	}
	if err := mpq.RemoveIf("q", o, func(mpq.Stats) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveIf of a removed queue: %v; want fs.ErrNotExist", err)
	}
	os.WriteFile(filepath.Join(dir, "bad.mpq"), []byte("not a queue, but long enough to be looked at"), 0o600)
	if err := mpq.RemoveIf("bad", o, func(mpq.Stats) error { return nil }); !errors.Is(err, mpq.ErrCorrupt) {
		t.Errorf("RemoveIf of a damaged file: %v; want ErrCorrupt", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.mpq")); err != nil {
		t.Errorf("RemoveIf removed a file it could not read: %v", err)
	}
}

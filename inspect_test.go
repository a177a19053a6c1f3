package mpq_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// inspectUntil polls Inspect until ok accepts its Stats, and fails the test
// with the last Stats if that does not happen within ackWait.
func inspectUntil(t *testing.T, dir, name string, what string, ok func(mpq.Stats) bool) mpq.Stats {
	t.Helper()
	deadline := time.Now().Add(ackWait)
	for {
		s, err := mpq.Inspect(name, &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never seen; last Inspect: %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func findProc(ps []mpq.Attached, pid int) (mpq.Attached, bool) {
	i := slices.IndexFunc(ps, func(p mpq.Attached) bool { return p.PID == pid })
	if i < 0 {
		return mpq.Attached{}, false
	}
	return ps[i], true
}

// Inspect sees what Stats sees, without attaching: it is not among the
// processes, and a process that died holding deliveries or waiting shows
// among the gone ones.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	q := ackQueue(t, mpq.Options{Dir: dir, Durable: false})
	const k = 3
	putMsgs(t, q, 0, 0, k)

	s, err := mpq.Inspect("acks", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	qs := q.Stats()
	if s.Len != k || s.Puts != k || s.Capacity != qs.Capacity || s.MaxMessage != qs.MaxMessage || !s.Created.Equal(qs.Created) || s.Used != qs.Used {
		t.Errorf("Inspect = %+v; Stats = %+v", s, qs)
	}
	if len(s.Procs) != 1 || s.Procs[0].PID != os.Getpid() || len(s.Gone) != 0 || s.Stale {
		t.Errorf("Inspect procs %+v, gone %+v, stale %v; want only this process", s.Procs, s.Gone, s.Stale)
	}

	// A consumer holding k deliveries, then waiting for one more.
	c := testutil.Start(t, "ack-holder", namedQueue(dir, "acks"), testutil.Env(fmt.Sprintf("%s=%d", envAckReceive, k+1)))
	s = inspectUntil(t, dir, "acks", "consumer holding and waiting", func(s mpq.Stats) bool {
		p, ok := findProc(s.Procs, c.Pid())
		return ok && p.Holding == k && p.WaitingData && p.Consumer
	})
	if s.Len != 0 || s.InFlight != k {
		t.Errorf("Len %d, InFlight %d; want 0, %d", s.Len, s.InFlight, k)
	}
	if qs := q.Stats(); len(qs.Procs) != 2 {
		t.Errorf("Stats procs %+v; want this process and the consumer", qs.Procs)
	} else if p, _ := findProc(qs.Procs, c.Pid()); p.Holding != k || !p.WaitingData {
		t.Errorf("Stats sees the consumer as %+v", p)
	}

	c.Kill()
	c.Wait(10 * time.Second)
	s = inspectUntil(t, dir, "acks", "dead consumer among the gone", func(s mpq.Stats) bool {
		_, live := findProc(s.Procs, c.Pid())
		g, gone := findProc(s.Gone, c.Pid())
		return !live && gone && g.Holding == k && g.WaitingData
	})
	if len(s.Procs) != 1 {
		t.Errorf("live procs %+v; want only this process", s.Procs)
	}
}

func TestInspectErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := mpq.Inspect("nope", &mpq.Options{Dir: dir}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Inspect of a missing queue: %v; want fs.ErrNotExist", err)
	}
	if _, err := mpq.Inspect("../x", &mpq.Options{Dir: dir}); !errors.Is(err, mpq.ErrInvalidName) {
		t.Errorf("Inspect(../x): %v; want ErrInvalidName", err)
	}
	q, err := mpq.Create("q", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Put(t.Context(), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	q.Close()
	path := filepath.Join(dir, "q.mpq")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, mpq.ErrCorrupt},
		{"short", orig[:100], mpq.ErrCorrupt},
		{"bad magic", append([]byte("XXXX"), orig[4:]...), mpq.ErrIncompatible},
		{"capacity flipped", flip(orig, 16), mpq.ErrCorrupt},
	} {
		p := filepath.Join(dir, "bad.mpq")
		if err := os.WriteFile(p, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := mpq.Inspect("bad", &mpq.Options{Dir: dir})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Inspect: %v; want %v", tc.name, err, tc.want)
		}
		after, _ := os.ReadFile(p)
		if !slices.Equal(after, tc.data) {
			t.Errorf("%s: Inspect changed the file", tc.name)
		}
	}
	if s, err := mpq.Inspect("q", &mpq.Options{Dir: dir}); err != nil || s.Len != 1 || len(s.Procs) != 0 {
		t.Errorf("Inspect(q) = %+v, %v; want 1 message, no processes", s, err)
	}
	if after, _ := os.ReadFile(path); !slices.Equal(after, orig) {
		t.Errorf("Inspect changed the queue file")
	}
}

func flip(b []byte, at int) []byte {
	c := slices.Clone(b)
	c[at] ^= 0x40
	return c
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b", "a", "c"} {
		q, err := mpq.Create(name, &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		q.Close()
	}
	// Not queues: other extensions, directories, hidden temporaries.
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	os.Mkdir(filepath.Join(dir, "d.mpq"), 0o700)
	os.WriteFile(filepath.Join(dir, ".a.mpq.123.tmp"), nil, 0o600)
	got, err := mpq.List(dir)
	if err != nil || !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("List = %q, %v; want [a b c]", got, err)
	}
	if _, err := mpq.List(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing dir: %v; want fs.ErrNotExist", err)
	}
}

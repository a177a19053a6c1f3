//go:build mpqhooks && linux

package mpq_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// TestReaderCannotWedge: a user who may only read a queue (mode 0644)
// takes read locks on all of its file while a producer dies holding the
// put lock. Writers still open the queue, take process slots, recover the
// dead producer's lock, put, get and seal: the reader can lock nothing
// they need, since their liveness locks are in a lock file it cannot open.
func TestReaderCannotWedge(t *testing.T) {
	uid, gid := testutil.Nobody(t)
	dir := filepath.Join(testutil.Public(t), "queues")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := &mpq.Options{Dir: dir, Mode: 0o644, Capacity: 64 << 10}
	q, err := mpq.Create("shared", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// A producer stopped inside its fourth Put, holding the put lock.
	p := testutil.Start(t, "hook-producer", namedQueue(dir, "shared"),
		testutil.Env(envID+"=1", envHookAfter+"=3"))
	p.Expect("stuck", 30*time.Second)
	r := testutil.Start(t, "read-locker", namedQueue(dir, "shared"), testutil.AsUser(uid, gid))
	r.Expect("locked the queue file", 30*time.Second)
	for _, want := range []string{
		"lock files 1",
		"open lock file: permission denied true",
		"open queue: permission denied true",
		"inspect: <nil> len 3",
	} {
		if got := r.Expect(want[:8], 30*time.Second); got != want {
			t.Errorf("reader: %q; want %q", got, want)
		}
	}
	p.Kill() // dies holding the put lock, with the reader's locks on every byte of the file

	// Every free slot can be taken, and the open lock is free.
	var hs []*mpq.Queue
	for i := range 4 {
		h, err := mpq.OpenContext(ctx, "shared", opts)
		if err != nil {
			t.Fatalf("open %d with the reader's locks held: %v", i, err)
		}
		defer h.Close()
		hs = append(hs, h)
	}
	// The dead producer's put lock is recovered: a Put, which needs it,
	// returns.
	if err := hs[0].Put(ctx, []byte("after")); err != nil {
		t.Fatalf("Put after the lock holder died: %v", err)
	}
	var got []string
	for range 4 {
		m, err := hs[1].Get(ctx)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got = append(got, string(m[:min(len(m), 5)]))
	}
	if got[3] != "after" {
		t.Errorf("got %q; want the producer's 3 messages, then %q", got, "after")
	}
	if err := hs[2].Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if _, err := hs[3].Get(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("Get after Seal: %v; want io.EOF", err)
	}
	st := q.Stats()
	for _, pr := range st.Procs {
		if pr.PID == p.Pid() {
			t.Errorf("the killed producer (pid %d) is still listed as attached: %+v", p.Pid(), st.Procs)
		}
	}
}

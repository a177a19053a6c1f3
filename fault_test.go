//go:build linux

package mpq_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// A queue's mapping that faults (its file truncated by another process, a
// page punched out of it on a full tmpfs) must cost the calls on that
// handle an error, never the process: the handle refuses further use, and
// the process's other queues go on working.

// checkFaulted checks that every call on q fails with ErrCorrupt, saying
// that the memory faulted, and that Close still works.
func checkFaulted(t *testing.T, q *mpq.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Put", func() error { return q.Put(ctx, []byte("after")) }},
		{"TryPut", func() error { return q.TryPut([]byte("after")) }},
		{"Get", func() error { _, err := q.Get(ctx); return err }},
		{"TryGet", func() error { _, err := q.TryGet(); return err }},
		{"PutBatch", func() error { _, err := q.PutBatch(ctx, [][]byte{[]byte("a")}); return err }},
		{"GetBatch", func() error { return q.GetBatch(ctx, new(mpq.Batch), 4) }},
		{"Receive", func() error { _, err := q.Receive(ctx); return err }},
		{"Join", func() error { return q.Join(ctx) }},
		{"Seal", q.Seal},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, mpq.ErrCorrupt) {
			t.Errorf("%s on a faulted queue: got %v; want ErrCorrupt", c.name, err)
		}
	}
	if n := q.Len(); n != 0 {
		t.Errorf("Len of a faulted queue = %d; want 0", n)
	}
	if err := q.Close(); err != nil {
		t.Errorf("Close of a faulted queue: %v", err)
	}
}

func TestFaultTruncatedFile(t *testing.T) {
	testutil.CheckGoroutines(t)
	ctx := context.Background()
	for _, size := range []int64{4096, 0} { // the ring gone; the header too
		dir := t.TempDir()
		q, err := mpq.Open("cut", &mpq.Options{Dir: dir, Capacity: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		other, err := mpq.Open("other", &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if err := q.Put(ctx, []byte("before the cut")); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Truncate(filepath.Join(dir, "cut.mpq"), size); err != nil {
			t.Fatal(err)
		}
		_, err = q.Get(ctx)
		if !errors.Is(err, mpq.ErrCorrupt) || !strings.Contains(err.Error(), "faulted") {
			t.Fatalf("Get from a queue truncated to %d bytes: got %v; want ErrCorrupt saying the memory faulted", size, err)
		}
		checkFaulted(t, q)
		// The process lives, and so does its other queue.
		if err := other.Put(ctx, []byte("fine")); err != nil {
			t.Fatal(err)
		}
		if m, err := other.Get(ctx); err != nil || string(m) != "fine" {
			t.Fatalf("other queue: got %q, %v", m, err)
		}
		other.Close()
		// The damaged file is refused, not faulted on, when opened again.
		if q, err := mpq.Open("cut", &mpq.Options{Dir: dir}); err == nil {
			q.Close()
			t.Errorf("opened a queue file truncated to %d bytes", size)
		}
	}
}

// TestFaultPunchedPage: a page punched out of a queue file on a full tmpfs
// faults (SIGBUS) when a Put reaches it. The Put fails, the handle refuses
// further use and lets go of the producer lock, and once there is room
// again a new handle backs the file and gets every message put before.
func TestFaultPunchedPage(t *testing.T) {
	testutil.CheckGoroutines(t)
	mnt := testutil.Tmpfs(t, 4<<20)
	opts := &mpq.Options{Dir: mnt, Capacity: 1 << 20}
	q, err := mpq.Create("holed", opts)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, "holed.mpq")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ringStart := fi.Size() - 1<<20
	punch(t, path, ringStart+64<<10, 64<<10) // ahead of the first 64 KiB of messages
	filler := fill(t, mnt)

	msg := make([]byte, 1000)
	put := 0
	for ; put < 1000; put++ {
		msg[0] = byte(put)
		if err = q.TryPut(msg); err != nil {
			break
		}
	}
	if !errors.Is(err, mpq.ErrCorrupt) || !strings.Contains(err.Error(), "faulted") {
		t.Fatalf("Put %d into the punched page: got %v; want ErrCorrupt", put, err)
	}
	if put < 50 || put > 70 {
		t.Errorf("%d Puts landed before the hole at 64 KiB; want about 64", put)
	}
	checkFaulted(t, q)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	q, err = mpq.Open("holed", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range put {
		m, err := q.TryGet()
		if err != nil || len(m) != len(msg) || m[0] != byte(i) {
			t.Fatalf("message %d of %d after the fault: %d bytes, %v", i, put, len(m), err)
		}
	}
	if m, err := q.TryGet(); !errors.Is(err, mpq.ErrEmpty) {
		t.Errorf("after the messages put: got %q, %v; want ErrEmpty (nothing partial)", m, err)
	}
	if err := q.Put(context.Background(), msg); err != nil {
		t.Errorf("Put after the file was backed again: %v", err)
	}
}

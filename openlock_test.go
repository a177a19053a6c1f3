//go:build linux

package mpq_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// waitingInLockWait reports whether some goroutine is in the open lock's
// retry loop.
func waitingInLockWait() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "liveness.lockWait")
}

// TestOpenLockWaitWedgesNoOtherQueue: a goroutine waiting for the open lock of
// queue a, held by another (stalled) process, does not hold up a Create
// of an unrelated queue b in the same process (it did, when a process-wide
// semaphore was held across the wait).
func TestOpenLockWaitWedgesNoOtherQueue(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("a", &mpq.Options{Dir: dir, Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	h := testutil.Start(t, "open-lock-holder", namedQueue(dir, "a"))
	h.Expect("holding", 30*time.Second)
	defer h.Kill()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if o, err := mpq.OpenContext(ctx, "a", &mpq.Options{Dir: dir}); err == nil {
			o.Close()
		}
	}()
	for !waitingInLockWait() {
		runtime.Gosched()
	}
	done := make(chan error, 1)
	go func() {
		b, err := mpq.Create("b", &mpq.Options{Dir: dir, Capacity: 64 << 10})
		if err == nil {
			b.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Create(b): %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Create of an unrelated queue blocked while another goroutine waits for queue a's open lock (openSem held across lockWait)")
	}
}

// TestRemoveIfCallbackOpenDeadlocks: RemoveIf holds openSem while it runs
// ok, so ok creating (or opening) any other queue of the process blocks:
// Create forever (its context is Background), Open for OpenWait.
func TestRemoveIfCallbackOpenDeadlocks(t *testing.T) {
	dir := t.TempDir()
	q, err := mpq.Create("a", &mpq.Options{Dir: dir, Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	done := make(chan error, 1)
	go func() {
		done <- mpq.RemoveIf("a", &mpq.Options{Dir: dir}, func(mpq.Stats) error {
			b, err := mpq.Create("b", &mpq.Options{Dir: dir, Capacity: 64 << 10})
			if err == nil {
				b.Close()
			}
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RemoveIf: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Create inside RemoveIf's function never returned (openSem held while ok runs)")
	}
}

//go:build mpqhooks

package mpq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// TestBlockingCancel checks that Get on an empty queue and Put on a full one
// wait, and that the end of their context wakes them: they return
// ctx.Err(). Every sleep in the kernel is made to last an hour, so a
// blocked call returns only if the cancel or the deadline woke it; one
// still blocked 10 s after its context ended fails the test. Each try
// blocks six goroutines on one context (one sleeps in the kernel, the
// others behind it). How long they took is logged, not asserted: on a
// loaded machine that is the scheduler's, and speed is the benchmark's to
// measure.
func TestBlockingCancel(t *testing.T) {
	testutil.CheckGoroutines(t)
	defer mpq.SetSleepSlice(time.Hour)()
	dir := t.TempDir()
	empty, err := mpq.Open("empty", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	full, n := fullQueue(t, &mpq.Options{Dir: dir, Capacity: 4096})
	ops := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Get on an empty queue", func(ctx context.Context) error {
			m, err := empty.Get(ctx)
			if m != nil {
				return fmt.Errorf("got message %q", m)
			}
			return err
		}},
		{"AppendGet on an empty queue", func(ctx context.Context) error {
			_, err := empty.AppendGet(ctx, nil)
			return err
		}},
		{"GetBatch on an empty queue", func(ctx context.Context) error {
			return empty.GetBatch(ctx, new(mpq.Batch), 10)
		}},
		{"Put on a full queue", func(ctx context.Context) error {
			return full.Put(ctx, make([]byte, 100))
		}},
		{"PutBatch on a full queue", func(ctx context.Context) error {
			k, err := full.PutBatch(ctx, [][]byte{make([]byte, 100)})
			if k != 0 {
				return fmt.Errorf("put %d messages", k)
			}
			return err
		}},
	}
	for _, tc := range ops {
		for _, deadline := range []bool{false, true} {
			want, how := context.Canceled, "cancel"
			if deadline {
				want, how = context.DeadlineExceeded, "deadline"
			}
			t.Run(tc.name+" until "+how, func(t *testing.T) {
				var ds []time.Duration
				for range 3 {
					d, errs := blockedFor(t, deadline, 6, tc.op)
					for _, err := range errs {
						if !errors.Is(err, want) {
							t.Fatalf("returned %v; want %v", err, want)
						}
					}
					ds = append(ds, d)
				}
				t.Logf("the slowest of six returned %v after the %s (three tries)", ds, how)
			})
		}
	}
	if l := empty.Len(); l != 0 {
		t.Errorf("empty queue has Len %d", l)
	}
	if l := full.Len(); l != n {
		t.Errorf("full queue has Len %d; want %d: a canceled Put wrote", l, n)
	}
}

func init() {
	testutil.Register("drain-woken", func() error {
		mpq.SetSleepSlice(time.Hour)
		return runDrain()
	})
}

// TestSealWakesBlockedConsumers seals an empty queue while consumer
// processes sleep in Get, each sleep in the kernel made to last an hour:
// all of them return io.EOF only if Seal woke them (one still blocked 30 s
// after it fails the test). How long they took is logged, not asserted.
func TestSealWakesBlockedConsumers(t *testing.T) {
	testutil.CheckGoroutines(t)
	const consumers = 5
	dir := t.TempDir()
	q, err := mpq.Create("seal", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var cs []*testutil.Child
	for range consumers {
		cs = append(cs, testutil.Start(t, "drain-woken", namedQueue(dir, "seal")))
	}
	for _, c := range cs {
		c.Expect("waiting", 30*time.Second)
	}
	// All asleep in the kernel (their slots say so), where none wakes by
	// itself.
	for deadline := time.Now().Add(30 * time.Second); ; {
		asleep := 0
		for _, p := range q.Stats().Procs {
			if p.WaitingData {
				asleep++
			}
		}
		if asleep == consumers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d consumers asleep after 30 s", asleep, consumers)
		}
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		c.Expect("eof", 30*time.Second)
	}
	t.Logf("all %d blocked consumers had io.EOF %v after Seal", consumers, time.Since(t0))
	for _, c := range cs {
		c.Succeed(10 * time.Second)
	}
}

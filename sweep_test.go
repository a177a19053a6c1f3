package mpq_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("sweep-hold", func() error {
		q, err := mpq.Open(os.Getenv(envName), &mpq.Options{Dir: os.Getenv(envDir), NoCreate: true})
		if err != nil {
			return err
		}
		d, err := q.Receive(context.Background())
		if err != nil {
			return err
		}
		testutil.Say("held %q", d.Data())
		testutil.BlockForever()
		return nil
	})
	testutil.Register("sweep-late", func() error {
		sc := bufio.NewScanner(os.Stdin)
		testutil.Say("waiting")
		sc.Scan() // "go"
		q, err := mpq.Open(os.Getenv(envName), &mpq.Options{Dir: os.Getenv(envDir), NoCreate: true})
		if err != nil {
			return err
		}
		d, err := q.Receive(context.Background())
		if err != nil {
			return err
		}
		testutil.Say("held %q count %d", d.Data(), d.Count())
		sc.Scan() // "ack"
		testutil.Say("ack: %v", d.Ack())
		return nil
	})
}

// TestReproSweepSlotReuse: consumer A holds a delivery and is killed;
// consumer B attaches (taking A's process slot, with a new generation) and
// holds a delivery before any sweep ran; the next sweep sees A's entry first,
// caches "slot dead" for the slot, and then gives back B's delivery too,
// although B is alive and its lease (30s) has 30s to go: B's Ack returns
// ErrLeaseExpired and the message is delivered a second time.
func TestSweepSlotReuse(t *testing.T) {
	for try := 0; try < 5; try++ {
		if reproOnce(t, try) {
			t.Errorf("try %d: a live consumer's delivery was given back by the sweep", try)
		}
	}
}

func reproOnce(t *testing.T, try int) bool {
	dir := t.TempDir()
	q, err := mpq.Create("r", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	for i := range 10 {
		q.Put(ctx, []byte(fmt.Sprint("m", i)))
	}
	b := testutil.Start(t, "sweep-late", namedQueue(dir, "r"), testutil.Stdin())
	b.Expect("waiting", time.Minute)
	a := testutil.Start(t, "sweep-hold", namedQueue(dir, "r"))
	a.Expect("held", time.Minute)
	time.Sleep(15 * time.Millisecond)
	// This Receive sweeps (A is alive: nothing to give back) and sets the sweep clock.
	d, err := q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.Ack()
	a.Kill()
	a.Wait(10 * time.Second)
	b.Send("go")
	l := b.Expect("held", time.Minute)
	time.Sleep(20 * time.Millisecond)
	// This Receive sweeps again: A is dead, B is alive in A's old slot.
	d2, err := q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Send("ack")
	ack := b.Expect("ack:", time.Minute)
	t.Logf("try %d: B %s; this process then received %q (count %d); B's %s; stats %v", try, l, d2.Data(), d2.Count(), ack, q.Stats())
	d2.Ack()
	b.Succeed(time.Minute)
	return ack != "ack: <nil>" // true: the bug
}

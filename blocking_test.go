package mpq_test

// Blocking: Get on an empty queue and Put on a full one wait, return
// ctx.Err() promptly when the context ends, are woken by other processes,
// and sleep without using the CPU.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// fullQueue returns a queue of the smallest capacity, filled with 100-byte
// messages until TryPut fails, and how many it holds.
func fullQueue(t testing.TB, opts *mpq.Options) (*mpq.Queue, int) {
	t.Helper()
	q, err := mpq.Open("full", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	n := 0
	for {
		err := q.TryPut(appendMsg(nil, 0, uint32(n), make([]byte, 100-msgHeader)))
		if errors.Is(err, mpq.ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("could not put anything")
	}
	return q, n
}

// blockedFor runs op in k goroutines at once, checks that they block, then
// ends their context (cancel, or a deadline 30ms ahead) and returns how long
// after that the slowest of them returned, and their errors.
func blockedFor(t *testing.T, deadline bool, k int, op func(ctx context.Context) error) (time.Duration, []error) {
	t.Helper()
	type result struct {
		err error
		at  time.Time
	}
	var ctx context.Context
	var cancel context.CancelFunc
	end := time.Now().Add(30 * time.Millisecond)
	if deadline {
		ctx, cancel = context.WithDeadline(context.Background(), end)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	done := make(chan result, k)
	for range k {
		go func() {
			err := op(ctx)
			done <- result{err, time.Now()}
		}()
	}
	if !deadline {
		time.Sleep(time.Until(end))
		if len(done) > 0 {
			t.Fatalf("returned %v without waiting", (<-done).err)
		}
		end = time.Now()
		cancel()
	}
	var slowest time.Duration
	var errs []error
	timeout := time.After(10 * time.Second)
	for range k {
		select {
		case r := <-done:
			if r.at.Before(end) {
				t.Fatalf("returned %v %v before its deadline", r.err, end.Sub(r.at))
			}
			slowest = max(slowest, r.at.Sub(end))
			errs = append(errs, r.err)
		case <-timeout:
			t.Fatalf("still blocked 10s after its context ended")
		}
	}
	return slowest, errs
}

// TestBlockingWakeAcrossProcesses checks that a Get blocked on an empty
// queue returns the message another process puts, and that a Put blocked on
// a full queue completes when another process takes messages out.
func TestBlockingWakeAcrossProcesses(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	q, n := fullQueue(t, &mpq.Options{Dir: dir, Capacity: 4096})

	// Put on the full queue blocks until a consumer process drains it.
	errc := make(chan error, 1)
	go func() {
		errc <- q.Put(context.Background(), appendMsg(nil, 0, uint32(n), make([]byte, 100-msgHeader)))
	}()
	time.Sleep(30 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Put on a full queue returned %v without waiting", err)
	default:
	}
	drain := testutil.Start(t, "drain", namedQueue(dir, "full"))
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("blocked Put: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Put still blocked 30s after a consumer process started")
	}
	drain.Expect(fmt.Sprintf("m 0 %d", n), 10*time.Second)

	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	drain.Succeed(10 * time.Second)
	checkStreams(t, drained(t, drain), map[uint32]int{0: n + 1})

	// Get on an empty queue blocks until a producer process puts.
	empty, err := mpq.Open("empty", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	type result struct {
		m   []byte
		err error
	}
	getc := make(chan result, 1)
	go func() {
		m, err := empty.Get(context.Background())
		getc <- result{m, err}
	}()
	time.Sleep(30 * time.Millisecond)
	select {
	case r := <-getc:
		t.Fatalf("Get on an empty queue returned %q, %v without waiting", r.m, r.err)
	default:
	}
	p := testutil.Start(t, "producer", namedQueue(dir, "empty"), testutil.Env(envID+"=7", envCount+"=1"))
	select {
	case r := <-getc:
		if r.err != nil {
			t.Fatalf("blocked Get: %v", r.err)
		}
		if id, seq, err := parseMsg(r.m); err != nil || id != 7 || seq != 0 {
			t.Errorf("blocked Get returned (%d, %d), %v; want (7, 0)", id, seq, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Get still blocked 30s after a producer process started")
	}
	p.Succeed(10 * time.Second)
}

// TestBlockedGetUsesNoCPU checks that a process blocked in Get on an empty
// (anonymous) queue for 2s uses less than 2% of a CPU, and is woken by a Put.
func TestBlockedGetUsesNoCPU(t *testing.T) {
	testutil.CheckGoroutines(t)
	q, err := mpq.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c := testutil.Start(t, "drain", passQueue(t, q))
	c.Expect("waiting", 30*time.Second)
	time.Sleep(100 * time.Millisecond) // past its spinning, and its start
	waits0 := q.Stats().Waits
	cpu0, err := testutil.ProcCPU(c.Pid())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	cpu1, err := testutil.ProcCPU(c.Pid())
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	waits := q.Stats().Waits - waits0
	if c.Count("m ") != 0 || c.Exited() {
		t.Fatalf("the consumer did not stay blocked%s", c.Diag())
	}
	used := cpu1 - cpu0
	t.Logf("a process blocked in Get for %v used %v of CPU (%.2f%%) and slept %d times", wall, used, 100*used.Seconds()/wall.Seconds(), waits)
	if used.Seconds() >= 0.02*wall.Seconds() {
		t.Errorf("a process blocked in Get for %v used %v of CPU; want < 2%%", wall, used)
	}
	putMsgs(t, q, 0, 0, 1)
	c.Expect("m 0 0", 10*time.Second)
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	c.Succeed(10 * time.Second)
}

// checkStreams checks that got holds, for each producer id of want,
// sequence numbers 0 to want[id]-1, each once and in order, and nothing else.
func checkStreams(t testing.TB, got [][2]uint32, want map[uint32]int) {
	t.Helper()
	streams := map[uint32][]uint32{}
	for _, m := range got {
		streams[m[0]] = append(streams[m[0]], m[1])
	}
	for id, seqs := range streams {
		n, ok := want[id]
		if !ok {
			t.Errorf("got %d messages of producer %d, which put none", len(seqs), id)
			continue
		}
		i := 0
		for i < min(n, len(seqs)) && seqs[i] == uint32(i) {
			i++
		}
		if i < len(seqs) {
			t.Errorf("producer %d: got %d messages, seq %d at index %d; want seqs 0 to %d once each, in order", id, len(seqs), seqs[i], i, n-1)
		} else if i < n {
			t.Errorf("producer %d: got %d messages, seqs 0 to %d; want 0 to %d", id, len(seqs), i-1, n-1)
		}
	}
	for id, n := range want {
		if _, ok := streams[id]; !ok && n > 0 {
			t.Errorf("got nothing of producer %d; want its %d messages", id, n)
		}
	}
}

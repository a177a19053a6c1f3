//go:build mpqhooks

package mpq_test

// Processes killed with SIGKILL at the worst moments: a producer holding the
// producer lock with half of its message copied, a consumer holding the
// consumer lock about to copy a message out (both stopped there by
// ring.TestHook), and every process at once in the middle of traffic. The
// hooks exist only in builds with the tag mpqhooks: see hooks_test.go.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("hook-producer", runHookProducer)
	testutil.Register("hook-consumer", runHookConsumer)
	testutil.Register("recover", runRecover)
	testutil.Register("spin", runSpin)
}

// recoveryBound is how soon after a process is killed holding a lock the
// others must be able to go on.
const recoveryBound = 100 * time.Millisecond

// runHookProducer puts messages of producer MPQ_TEST_ID (as runProducer
// does, without end) and says "c SEQ" after each Put that returned nil.
func runHookProducer() error {
	stopAt(ring.HookPut, testutil.EnvInt(envHookAfter, -1))
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	g := newMsgGen(testutil.EnvInt(envID, 0), uint64(testutil.EnvInt(envSeed, 1)), q.Stats().MaxMessage, testutil.EnvInt(envLarge, 0))
	var buf []byte
	for {
		buf = g.next(buf)
		if err := q.Put(context.Background(), buf); err != nil {
			return fmt.Errorf("put %d: %w", g.seq-1, err)
		}
		testutil.Say("c %d", g.seq-1)
	}
}

// runHookConsumer gets messages without end, checking each one's checksum
// and each producer's order, and says "m ID SEQ" after each.
func runHookConsumer() error {
	stopAt(ring.HookGet, testutil.EnvInt(envHookAfter, -1))
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	last := map[uint32]uint32{}
	var buf []byte
	for {
		if buf, err = q.AppendGet(context.Background(), buf[:0]); err != nil {
			return err
		}
		id, seq, err := parseMsg(buf)
		if err != nil {
			return err
		}
		if l, ok := last[id]; ok && seq <= l {
			return fmt.Errorf("producer %d: seq %d after %d", id, seq, l)
		}
		last[id] = seq
		testutil.Say("m %d %d", id, seq)
	}
}

// runRecover is a fresh process opening a queue whose processes were all
// killed. It takes one message (taking over the consumer lock if a dead
// process holds it), says "len N" with the Len that follows, drains the rest
// saying "m ID SEQ" for each message, says the stats, and checks that a Put
// and a Get still work.
func runRecover() error {
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	say := func(m []byte) error {
		id, seq, err := parseMsg(m)
		if err == nil {
			testutil.Say("m %d %d", id, seq)
		}
		return err
	}
	m, err := q.TryGet()
	if err != nil {
		return fmt.Errorf("first TryGet: %w", err)
	}
	if err := say(m); err != nil {
		return err
	}
	testutil.Say("len %d", q.Len())
	for {
		m, err := q.TryGet()
		if errors.Is(err, mpq.ErrEmpty) {
			break
		}
		if err != nil {
			return err
		}
		if err := say(m); err != nil {
			return err
		}
	}
	s := q.Stats()
	testutil.Say("stats len=%d recovered=%d procs=%d", s.Len, s.Recovered, len(s.Procs))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Put(ctx, []byte("round trip")); err != nil {
		return fmt.Errorf("put after recovery: %w", err)
	}
	if m, err := q.Get(ctx); err != nil || string(m) != "round trip" {
		return fmt.Errorf("get after recovery: %q, %v", m, err)
	}
	testutil.Say("round trip ok")
	return q.Close()
}

// runSpin keeps a CPU busy for at most a minute.
func runSpin() error {
	for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		for i := 0; i < 1e6; i++ {
		}
	}
	return nil
}

// TestDeathProducerMidPut kills a producer that holds the producer lock with
// half of a (large) message copied. This process's next Put succeeds within
// 100ms; another producer process works too; a consumer process receives
// every message that was put, never the partial one.
func TestDeathProducerMidPut(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	q, err := mpq.Create("death", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	drain := testutil.Start(t, "drain", namedQueue(dir, "death"))
	drain.Expect("waiting", 30*time.Second)

	const k = 100 // messages the dying producer commits
	p := testutil.Start(t, "hook-producer", namedQueue(dir, "death"), testutil.Env(
		fmt.Sprintf("%s=1", envID), fmt.Sprintf("%s=%d", envHookAfter, k),
		fmt.Sprintf("%s=%d", envLarge, k+1))) // message k is as large as can be
	p.Expect("stuck", 30*time.Second)
	if n := p.Count("c "); n != k {
		t.Fatalf("stuck producer reported %d messages put; want %d", n, k)
	}

	t0 := p.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = q.Put(ctx, appendMsg(nil, 0, 0, []byte("after the kill")))
	d := time.Since(t0)
	if err != nil {
		t.Fatalf("Put after killing a producer inside Put: %v", err)
	}
	if d > recoveryBound {
		t.Errorf("Put succeeded %v after SIGKILL to the producer holding the lock; want < %v", d, recoveryBound)
	} else {
		t.Logf("Put succeeded %v after SIGKILL to the producer holding the lock", d)
	}
	if err := p.Wait(10 * time.Second); err == nil {
		t.Errorf("%v exited cleanly after SIGKILL", p)
	}

	putMsgs(t, q, 0, 1, 10)
	p2 := testutil.Start(t, "producer", namedQueue(dir, "death"), testutil.Env(
		fmt.Sprintf("%s=2", envID), fmt.Sprintf("%s=50", envCount)))
	p2.Succeed(30 * time.Second)
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	drain.Expect("eof", 10*time.Second)
	drain.Succeed(10 * time.Second)
	checkStreams(t, drained(t, drain), map[uint32]int{0: 10, 1: k, 2: 50})

	s := q.Stats()
	if s.Recovered == 0 || s.Len != 0 || s.Puts != 10+k+50 || s.Gets != 10+k+50 {
		t.Errorf("stats: %v, %d recovered; want %d puts and gets, a recovered lock and no message left", s, s.Recovered, 10+k+50)
	}
	if len(s.Procs) != 1 {
		t.Errorf("Procs: %+v; want only this process", s.Procs)
	}
}

// TestDeathConsumerMidGet kills a consumer that holds the consumer lock,
// about to copy a message out. This process's next Get succeeds within
// 100ms and returns that very message; everything else is received exactly
// once, by it or by another consumer process.
func TestDeathConsumerMidGet(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	q, err := mpq.Create("death", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n, k = 200, 50
	putMsgs(t, q, 0, 0, n)

	c := testutil.Start(t, "hook-consumer", namedQueue(dir, "death"), testutil.Env(fmt.Sprintf("%s=%d", envHookAfter, k)))
	c.Expect("stuck", 30*time.Second)
	got := drained(t, c)
	if len(got) != k {
		t.Fatalf("stuck consumer reported %d messages; want %d", len(got), k)
	}

	t0 := c.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := q.Get(ctx)
	d := time.Since(t0)
	if err != nil {
		t.Fatalf("Get after killing a consumer inside Get: %v", err)
	}
	if d > recoveryBound {
		t.Errorf("Get succeeded %v after SIGKILL to the consumer holding the lock; want < %v", d, recoveryBound)
	} else {
		t.Logf("Get succeeded %v after SIGKILL to the consumer holding the lock", d)
	}
	id, seq, err := parseMsg(m)
	if err != nil {
		t.Fatal(err)
	}
	if id != 0 || seq != k {
		t.Errorf("first Get after the kill returned (%d, %d); want the message the dead consumer was taking, (0, %d)", id, seq, k)
	}
	got = append(got, [2]uint32{id, seq})
	if err := c.Wait(10 * time.Second); err == nil {
		t.Errorf("%v exited cleanly after SIGKILL", c)
	}

	putMsgs(t, q, 0, n, n+1)
	drain := testutil.Start(t, "drain", namedQueue(dir, "death"))
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	drain.Succeed(30 * time.Second)
	got = append(got, drained(t, drain)...)
	checkStreams(t, got, map[uint32]int{0: n + 1})

	s := q.Stats()
	if s.Recovered == 0 || s.Len != 0 {
		t.Errorf("stats: %v, %d recovered; want a recovered lock and no message left", s, s.Recovered)
	}
	if len(s.Procs) != 1 {
		t.Errorf("Procs: %+v; want only this process", s.Procs)
	}
}

// TestDeathKillAll kills every process using a queue in the middle of
// traffic (three producers, two consumers, and a third consumer stopped
// inside Get, so that a dead process is sure to hold a lock), then opens the
// queue in a fresh process: every message a Put reported as written was
// either received before the kill or is still in the queue, exactly once,
// and Len and Stats are right after the recovery.
func TestDeathKillAll(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	// Room for the producers to go on while the consumers are held up.
	q, err := mpq.Create("all", &mpq.Options{Dir: dir, Capacity: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close() // closed before the kill: see below
	seed := time.Now().UnixNano()
	const producers, consumers = 3, 2

	var prods, cons []*testutil.Child
	for i := range producers {
		prods = append(prods, testutil.Start(t, "hook-producer", namedQueue(dir, "all"), testutil.Env(
			fmt.Sprintf("%s=%d", envID, i), fmt.Sprintf("%s=%d", envSeed, seed), envHookAfter+"=-1")))
	}
	for range consumers {
		cons = append(cons, testutil.Start(t, "hook-consumer", namedQueue(dir, "all"), testutil.Env(envHookAfter+"=-1")))
	}
	// Let the traffic flow.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		enough := true
		for _, p := range prods {
			enough = enough && p.Count("c ") >= 500
		}
		for _, c := range cons {
			enough = enough && c.Count("m ") >= 500
		}
		if enough {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("too little traffic after 30s")
		}
	}
	h := testutil.Start(t, "hook-consumer", namedQueue(dir, "all"), testutil.Env(envHookAfter+"=3"))
	h.Expect("stuck", 30*time.Second)
	// The other consumers now wait for h's lock. Wait until they have said
	// every message they got: until all that were taken (counted in the
	// queue header) have been reported. Then none is lost in a consumer that
	// got it but died before saying so, and any message missing below is
	// a loss. This process then lets go of the queue.
	reported := func() int {
		n := h.Count("m ")
		for _, c := range cons {
			n += c.Count("m ")
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); q.Stats().Gets != uint64(reported()); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s, the queue counts %d messages taken; consumers reported %d", q.Stats().Gets, reported())
		}
	}
	q.Close()
	// h last: no consumer is left alive to take its lock over.
	all := append(append(prods, cons...), h)
	for _, c := range all {
		c.Kill()
	}
	for _, c := range all {
		if err := c.Wait(10 * time.Second); err == nil {
			t.Errorf("%v exited cleanly after SIGKILL", c)
		}
	}

	r := testutil.Start(t, "recover", namedQueue(dir, "all"))
	r.Succeed(30 * time.Second)
	var lenAfter, left, recovered, procs int
	if _, err := fmt.Sscanf(r.Expect("len ", 0), "len %d", &lenAfter); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(r.Expect("stats ", 0), "stats len=%d recovered=%d procs=%d", &left, &recovered, &procs); err != nil {
		t.Fatal(err)
	}
	r.Expect("round trip ok", 0)
	inQueue := drained(t, r)
	t.Logf("recovering process found %d messages; %d recovered locks", len(inQueue), recovered)
	if lenAfter != len(inQueue)-1 {
		t.Errorf("Len after recovery and one Get: %d; then %d messages were drained", lenAfter, len(inQueue)-1)
	}
	if left != 0 || recovered == 0 || procs != 1 {
		t.Errorf("stats after draining: len %d, %d recovered locks, %d processes; want 0, > 0, 1", left, recovered, procs)
	}

	// Committed: what each producer said it put (a producer may have died
	// between a Put and saying so: its next message may be there too).
	committed := make([]int, producers)
	for i, p := range prods {
		for j, l := range p.Lines() {
			if l != fmt.Sprintf("c %d", j) {
				t.Fatalf("producer %d: line %d is %q", i, j, l)
			}
		}
		committed[i] = p.Count("c ")
	}
	seen := map[[2]uint32]int{}
	for _, c := range append(slices.Clone(cons), h, r) {
		for _, m := range drained(t, c) {
			seen[m]++
			if seen[m] == 2 {
				t.Errorf("message %v received twice", m)
			}
			if int(m[0]) >= producers {
				t.Errorf("received message %v of no producer", m)
			} else if int(m[1]) > committed[m[0]] {
				t.Errorf("received message %v; producer %d reported %d puts", m, m[0], committed[m[0]])
			}
		}
	}
	var lost [][2]uint32
	total := 0
	for id, n := range committed {
		total += n
		for seq := range n {
			if seen[[2]uint32{uint32(id), uint32(seq)}] == 0 {
				lost = append(lost, [2]uint32{uint32(id), uint32(seq)})
			}
		}
	}
	t.Logf("%d messages committed", total)
	if len(lost) > 0 {
		t.Errorf("%d of %d committed messages lost: %v", len(lost), total, lost)
	}
}

// TestDeathRecoveryUnderCPULoad kills a producer inside Put, then a consumer
// inside Get, as above, while busy processes (two per CPU, as on a CI
// machine running other tests) keep every CPU occupied: this process must
// still go on within 100ms of each kill.
func TestDeathRecoveryUnderCPULoad(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	q, err := mpq.Create("load", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for range 2 * runtime.NumCPU() {
		testutil.Start(t, "spin")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	p := testutil.Start(t, "hook-producer", namedQueue(dir, "load"), testutil.Env(envHookAfter+"=0"))
	p.Expect("stuck", 30*time.Second)
	t0 := p.Kill()
	err = q.Put(ctx, appendMsg(nil, 0, 0, nil))
	dp := time.Since(t0)
	if err != nil {
		t.Fatalf("Put after killing a producer inside Put: %v", err)
	}

	c := testutil.Start(t, "hook-consumer", namedQueue(dir, "load"), testutil.Env(envHookAfter+"=0"))
	c.Expect("stuck", 30*time.Second)
	t0 = c.Kill()
	m, err := q.Get(ctx)
	dc := time.Since(t0)
	if err != nil {
		t.Fatalf("Get after killing a consumer inside Get: %v", err)
	}
	if id, seq, err := parseMsg(m); err != nil || id != 0 || seq != 0 {
		t.Errorf("Get after the kill returned (%d, %d), %v; want (0, 0)", id, seq, err)
	}
	if dp > recoveryBound || dc > recoveryBound {
		t.Errorf("under load, Put succeeded %v after a producer was killed holding the lock, Get %v after a consumer was; want < %v", dp, dc, recoveryBound)
	} else {
		t.Logf("under load, Put succeeded %v after a producer was killed holding the lock, Get %v after a consumer was", dp, dc)
	}
}

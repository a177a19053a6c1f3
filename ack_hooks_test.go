//go:build mpqhooks

package mpq_test

// Consumers killed where only the ring's test hooks can stop them: see
// hooks_test.go.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/testutil"
)

// A consumer process killed inside Receive or Ack, holding the consumer lock
// halfway through its update (stopped there by ring.TestHook), and holding
// other deliveries: the next consumer repairs the queue. Every message not
// acked is delivered again exactly once (those the dead process held with
// count 2); the one whose Ack was cut short may count as acked or come once
// more; nothing is lost; the counters agree; Join completes once all is
// acked.
func TestReceiverKilledHoldingLock(t *testing.T) {
	testutil.CheckGoroutines(t)
	const n = 20
	for _, tc := range []struct {
		name    string
		hook    string
		receive int // messages the child receives (the last one at the hook, for HookReceive)
		ack     bool
		after   int // calls of the hook before the one it stops in
	}{
		{"Receive", ring.HookReceive, 6, false, 5},
		{"Ack", ring.HookAck, 6, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q := ackQueue(t, mpq.Options{Dir: dir})
			putMsgs(t, q, 0, 0, n)
			env := []string{
				fmt.Sprintf("%s=%d", envAckReceive, tc.receive), envAckHook + "=" + tc.hook,
				fmt.Sprintf("%s=%d", envHookAfter, tc.after),
			}
			if tc.ack {
				env = append(env, envAckAck+"=1")
			}
			c := testutil.Start(t, "ack-holder", namedQueue(dir, "acks"), testutil.Env(env...))
			c.Expect("stuck", 30*time.Second)
			received, acked := ackLines(t, c)
			t.Logf("consumer received %v, acked %v, then stopped in %s", received, acked, tc.hook)
			c.Kill()
			if err := c.Wait(10 * time.Second); err == nil {
				t.Errorf("%v exited cleanly after SIGKILL", c)
			}

			want, maybe := map[uint32]int{}, map[uint32]int{}
			for i := range uint32(n) {
				want[i] = 1
			}
			for _, seq := range received {
				want[seq] = 2
			}
			for _, seq := range acked {
				delete(want, seq)
			}
			heldByDead := len(received) - len(acked)
			if tc.hook == ring.HookAck {
				// Killed in the Ack of the message after the last acked.
				cut := uint32(len(acked))
				maybe[cut] = 2
				delete(want, cut)
				heldByDead--
			}
			if len(received) != tc.receive-btoi(tc.hook == ring.HookReceive) || len(acked) != tc.after*btoi(tc.ack) {
				t.Fatalf("consumer received %d and acked %d messages", len(received), len(acked))
			}
			ds := receiveAll(t, q, want, maybe)
			s := q.Stats()
			if s.Len != 0 || s.InFlight != len(ds) || s.Recovered == 0 || s.Redelivered < uint64(heldByDead) {
				t.Errorf("stats with everything received: Len %d, InFlight %d, Recovered %d, Redelivered %d; want 0, %d, > 0, >= %d",
					s.Len, s.InFlight, s.Recovered, s.Redelivered, len(ds), heldByDead)
			}
			for _, d := range ds {
				mustAck(t, d)
			}
			// The Ack cut short may or may not be counted.
			acks := uint64(len(acked) + len(ds))
			cutCounts := uint64(0)
			if len(maybe) > 0 && !slices.ContainsFunc(ds, func(d *mpq.Delivery) bool {
				_, seq, _ := parseMsg(d.Data())
				_, ok := maybe[seq]
				return ok
			}) {
				cutCounts = 1
			}
			s = q.Stats()
			if s.Len != 0 || s.InFlight != 0 || s.Used != 0 || s.Gets != n || s.Puts != n || s.Acks < acks || s.Acks > acks+cutCounts {
				t.Errorf("stats with everything acked: %v, InFlight %d, Acks %d; want Len 0, Used 0, %d puts and gets, InFlight 0, Acks %d (+%d)",
					s, s.InFlight, s.Acks, n, acks, cutCounts)
			}
			ctx, cancel := context.WithTimeout(t.Context(), ackWait)
			defer cancel()
			if err := q.Join(ctx); err != nil {
				t.Fatalf("Join: %v", err)
			}
			// The queue works on.
			putMsgs(t, q, 0, n, n+1)
			d := mustReceive(t, q)
			if _, seq, err := parseMsg(d.Data()); err != nil || seq != n || d.Count() != 1 {
				t.Errorf("after the repair: seq %d, count %d, %v; want %d, 1", seq, d.Count(), err, n)
			}
			mustAck(t, d)
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

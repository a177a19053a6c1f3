package natsq_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/natsq"
)

// restart shuts s down, waits for it to be gone, and starts a server on the
// same port and store directory.
func restart(t *testing.T, s *server.Server, dir string) *server.Server {
	t.Helper()
	port := s.Addr().(*net.TCPAddr).Port
	s.Shutdown()
	s.WaitForShutdown()
	return startServer(t, dir, port)
}

// A file-backed queue survives a restart of the server: nothing acknowledged
// comes back, nothing else is lost, the same handle (reconnecting by itself)
// keeps working, and a seal stays.
func TestServerRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, 0)
	u := queueURL(s, "restart", "ack-wait=2s")
	ctx := timeout(t, 2*waitLong)
	q := openQ(t, u)
	defer q.Close() // while the server is up: the servers stop before the cleanups close q

	const n, nAcked = 20, 8
	for i := range n {
		put(t, q, msg(i, 8))
	}
	// Two held across the restart, never acknowledged: they come back.
	acked, held := ackAndHold(t, q, nAcked, 2)

	s = restart(t, s, dir)

	// The same handle puts again once it has reconnected (Put waits
	// through the reconnection).
	put(t, q, msg(n, 8))
	counts := ackAfterRestart(t, ctx, q, acked, n+1)
	for i := range n + 1 {
		if m := string(msg(i, 8)); !acked[m] {
			t.Errorf("%s lost", m)
		}
	}
	for m := range held {
		if counts[m] < 2 {
			t.Errorf("%s, held across the restart, came back with count %d", m, counts[m])
		}
	}

	// Everything acknowledged is gone from the stream.
	nq, err := natsq.OpenURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer nq.Close()
	if st, err := nq.Stats(ctx); err != nil || st.Messages != 0 || st.AckPending != 0 {
		t.Fatalf("after all acknowledged: %d messages in the stream, %d pending acknowledgement (%v)", st.Messages, st.AckPending, err)
	}

	// A seal survives a restart, for the old handles and new ones.
	put(t, q, []byte("last"))
	if err := q.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	s = restart(t, s, dir)
	fresh := openQ(t, u)
	for name, h := range map[string]mpq.MessageQueue{"old handle": nq, "new handle": fresh} {
		if err := h.Put(ctx, []byte("late")); !errors.Is(err, mpq.ErrSealed) {
			t.Fatalf("Put on the %s after a restart of a sealed queue: %v, want ErrSealed", name, err)
		}
	}
	get(t, fresh, []byte("last"))
	for _, h := range []mpq.MessageQueue{q, nq, fresh} {
		if m, err := h.Get(ctx); err != io.EOF {
			t.Fatalf("Get on a sealed, drained queue after a restart: %.10q, %v; want io.EOF", m, err)
		}
	}
	if st, err := nq.Stats(ctx); err != nil || !st.Sealed {
		t.Fatalf("Stats after the restart: sealed %v, %v", st.Sealed, err)
	}
	_ = s
}

// ackAndHold receives ack messages from q and acknowledges each (the server
// confirming it), then receives hold more and keeps them unacknowledged. It
// returns the messages of each kind.
func ackAndHold(t *testing.T, q mpq.MessageQueue, ack, hold int) (acked, held map[string]bool) {
	t.Helper()
	acked = map[string]bool{}
	for range ack {
		d := receive(t, q)
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		acked[string(d.Data())] = true
	}
	held = map[string]bool{}
	for range hold {
		held[string(receive(t, q).Data())] = true
	}
	return acked, held
}

// ackAfterRestart receives and acknowledges messages from q, adding them to
// acked, until total are acknowledged. A message acknowledged before may
// not come again; one whose Ack finds its lease ended (it waited in the
// handle through the restart) will. It returns the highest count each
// message came with.
func ackAfterRestart(t *testing.T, ctx context.Context, q mpq.MessageQueue, acked map[string]bool, total int) map[string]int {
	t.Helper()
	counts := map[string]int{} // the highest count each message came with
	for len(acked) < total {
		d, err := q.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive after the restart, %d of %d acknowledged: %v", len(acked), total, err)
		}
		m := string(d.Data())
		if acked[m] {
			t.Fatalf("%s delivered again (count %d) after its Ack was confirmed", m, d.Count())
		}
		counts[m] = max(counts[m], d.Count())
		switch err := d.Ack(); {
		case err == nil:
			acked[m] = true
		case errors.Is(err, mpq.ErrLeaseExpired):
			// It waited in the handle through the restart: it will
			// come again.
		default:
			t.Fatalf("Ack of %s after the restart: %v", m, err)
		}
	}
	return counts
}

// While the server is down, blocked calls wait for it (until their
// context), calls that do not wait fail rather than hang, and once it is back
// the handle works without being opened again.
func TestServerDown(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, 0)
	u := queueURL(s, "down", "timeout=2s")
	q := openQ(t, u)
	defer q.Close() // while the server is up: the servers stop before the cleanups close q
	put(t, q, []byte("before"))
	port := s.Addr().(*net.TCPAddr).Port
	s.Shutdown()
	s.WaitForShutdown()

	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := q.Put(short, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put with the server down: %v, want context.DeadlineExceeded", err)
	}
	short, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m, err := q.Get(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with the server down: %.10q, %v, want context.DeadlineExceeded", m, err)
	}
	if err := q.TryPut([]byte("x")); err == nil || errors.Is(err, mpq.ErrFull) {
		t.Fatalf("TryPut with the server down: %v, want an error other than ErrFull", err)
	}
	if m, err := q.TryGet(); err == nil {
		t.Fatalf("TryGet with the server down: %.10q", m)
	}
	if n := q.Len(); n != -1 {
		t.Fatalf("Len with the server down = %d, want -1", n)
	}

	// A Put without a deadline waits through the outage, longer than one
	// publish's timeout (5s), and puts its message once.
	putting := async(func() result { return result{err: q.Put(context.Background(), []byte("through"))} })
	stillBlocked(t, putting, "Put with the server down")
	time.Sleep(6 * time.Second)
	startServer(t, dir, port)
	if r := await(t, putting, "Put through the outage"); r.err != nil {
		t.Fatalf("Put through the outage: %v", r.err)
	}
	// The calls that failed put nothing.
	get(t, q, []byte("before"))
	get(t, q, []byte("through"))
	put(t, q, []byte("after"))
	get(t, q, []byte("after"))
	wantEmpty(t, q, "after all")
}

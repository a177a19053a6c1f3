package mpq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
)

// Every method that takes a context.Context returns ErrNilContext at once
// when given nil, whether or not it would block, and changes nothing.
func TestNilContext(t *testing.T) {
	var nilCtx context.Context
	// Made once, outside the calls: allocating and zeroing it takes
	// seconds on a loaded machine under -race.
	tooLarge := make([]byte, mpq.MaxConnMessage+1)
	urlDir := t.TempDir()
	l, err := mpq.Listen("nilctx", &mpq.ListenOptions{Dir: urlDir})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, full := range []bool{false, true} {
		q, err := mpq.New(&mpq.Options{Capacity: badCap, MaxMessage: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		a, b, err := mpq.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		if full {
			// A message waiting for every Get and Recv, and room for Puts.
			if err := q.TryPut([]byte("kept")); err != nil {
				t.Fatal(err)
			}
			if err := a.TrySend([]byte("kept")); err != nil {
				t.Fatal(err)
			}
		}
		want := 0
		if full {
			want = 1
		}
		tq := mpq.QueueOf[string](q, mpq.Raw)
		tc := mpq.ConnOf[string](b, mpq.Raw)
		for _, tt := range []struct {
			name string
			op   func() error
		}{
			{"Queue.Put", func() error { return q.Put(nilCtx, []byte("x")) }},
			{"Queue.Get", func() error { _, err := q.Get(nilCtx); return err }},
			{"Queue.AppendGet", func() error { _, err := q.AppendGet(nilCtx, nil); return err }},
			{"Queue.PutBatch", func() error { _, err := q.PutBatch(nilCtx, [][]byte{[]byte("x")}); return err }},
			{"Queue.GetBatch", func() error { return q.GetBatch(nilCtx, new(mpq.Batch), 0) }},
			{"Queue.GetBatch nil Batch", func() error { return q.GetBatch(nilCtx, nil, 0) }},
			{"Queue.Receive", func() error { _, err := q.Receive(nilCtx); return err }},
			{"Queue.Join", func() error { return q.Join(nilCtx) }},
			{"TypedQueue.Put", func() error { return tq.Put(nilCtx, "x") }},
			{"TypedQueue.Get", func() error { _, err := tq.Get(nilCtx); return err }},
			{"Conn.Send", func() error { return a.Send(nilCtx, []byte("x")) }},
			{"Conn.Send too large", func() error { return a.Send(nilCtx, tooLarge) }},
			{"Conn.Recv", func() error { _, err := b.Recv(nilCtx); return err }},
			{"Conn.AppendRecv", func() error { _, err := b.AppendRecv(nilCtx, nil); return err }},
			{"Conn.Poll", func() error { _, err := b.Poll(nilCtx); return err }},
			{"TypedConn.Send", func() error { return mpq.ConnOf[string](a, mpq.Raw).Send(nilCtx, "x") }},
			{"TypedConn.Recv", func() error { _, err := tc.Recv(nilCtx); return err }},
			{"OpenURL", func() error { _, err := mpq.OpenURL(nilCtx, "shm:nilctx?dir="+urlDir); return err }},
			{"Listener.Accept", func() error { _, err := l.Accept(nilCtx); return err }},
			{"Dial", func() error { _, err := mpq.Dial(nilCtx, "nilctx", &mpq.DialOptions{Dir: urlDir}); return err }},
		} {
			done := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						done <- errors.New("panic")
					}
				}()
				done <- tt.op()
			}()
			select {
			case err := <-done:
				if !errors.Is(err, mpq.ErrNilContext) {
					t.Errorf("%s (message waiting: %v): got %v; want %v", tt.name, full, err, mpq.ErrNilContext)
				}
			case <-time.After(time.Minute): // a hang, not a slow call
				t.Fatalf("%s (message waiting: %v): still blocked after a minute; want %v at once", tt.name, full, mpq.ErrNilContext)
			}
			if n := q.Len(); n != want {
				t.Errorf("%s (message waiting: %v): Queue.Len after the call: got %d; want %d", tt.name, full, n, want)
			}
			if s := q.Stats(); s.InFlight != 0 {
				t.Errorf("%s (message waiting: %v): Stats.InFlight: got %d; want 0", tt.name, full, s.InFlight)
			}
		}
		// Nothing was sent or taken on the connection.
		m, err := b.TryRecv()
		switch {
		case full && (err != nil || string(m) != "kept"):
			t.Errorf("TryRecv after the calls: got %q, %v; want %q, nil", m, err, "kept")
		case !full && !errors.Is(err, mpq.ErrEmpty):
			t.Errorf("TryRecv after the calls: got %q, %v; want %v", m, err, mpq.ErrEmpty)
		}
		if m, err := a.TryRecv(); !errors.Is(err, mpq.ErrEmpty) {
			t.Errorf("TryRecv on the sender's end after the calls: got %q, %v; want %v", m, err, mpq.ErrEmpty)
		}
	}
	if names, err := mpq.List(urlDir); err != nil || len(names) != 0 { // the socket is no queue
		t.Errorf("OpenURL with a nil context made queues %q (%v); want none", names, err)
	}
}

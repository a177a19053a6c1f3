package mpq_test

import (
	"context"
	"testing"

	"github.com/mpq-go/mpq"
)

// In-process micro-benchmarks of the hot path; cross-process figures come
// from the harness of mpq bench (cmd/mpq/internal/bench).

func benchQueue(b *testing.B) *mpq.Queue {
	q, err := mpq.Open("bench", &mpq.Options{Dir: b.TempDir(), Capacity: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

func BenchmarkPutGet64(b *testing.B) { putGet64(b, benchQueue(b)) }

// BenchmarkPutGet64Anon is BenchmarkPutGet64 on an anonymous queue (a
// memfd), whose mapping cannot fault: its hot path runs without the guard
// that turns a fault on a named queue's mapping into an error.
func BenchmarkPutGet64Anon(b *testing.B) {
	q, err := mpq.New(&mpq.Options{Capacity: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	putGet64(b, q)
}

func putGet64(b *testing.B, q *mpq.Queue) {
	ctx := context.Background()
	msg := make([]byte, 64)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if err := q.Put(ctx, msg); err != nil {
			b.Fatal(err)
		}
		var err error
		if buf, err = q.AppendGet(ctx, buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatch64(b *testing.B) {
	q := benchQueue(b)
	ctx := context.Background()
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = make([]byte, 64)
	}
	var batch mpq.Batch
	b.ReportAllocs()
	b.SetBytes(64 * 64)
	for b.Loop() {
		if _, err := q.PutBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(msgs); got += batch.Len() {
			if err := q.GetBatch(ctx, &batch, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkPipe64 sends a 64-byte message on one end of a Pipe and
// receives it at the other, in one goroutine.
func BenchmarkPipe64(b *testing.B) {
	a, z, err := mpq.Pipe(false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(); z.Close() })
	ctx := context.Background()
	msg := make([]byte, 64)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if err := z.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if buf, err = a.AppendRecv(ctx, buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

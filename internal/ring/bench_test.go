package ring

import (
	"testing"
	"time"
)

// In-process micro-benchmarks of the ring's hot path on heap memory: no
// system calls, so they measure the protocol alone. The mpq package's
// benchmarks add the mapping and the waiting around it.

// benchRing attaches a ring of 1 MiB for b; cannotFault skips the fault
// guard, as an anonymous queue's ring does.
func benchRing(b *testing.B, cannotFault bool) *Ring {
	r := attachT(b, newMem(b, 1<<20, 1<<16), newEnv(), 0)
	if cannotFault {
		r.CannotFault()
	}
	return r
}

func BenchmarkPutGet64(b *testing.B)        { benchPutGet(b, benchRing(b, false)) }
func BenchmarkPutGet64NoFault(b *testing.B) { benchPutGet(b, benchRing(b, true)) }

func benchPutGet(b *testing.B, r *Ring) {
	msg := make([]byte, 64)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if err := r.Put(msg, Try); err != nil {
			b.Fatal(err)
		}
		var err error
		if buf, err = r.Get(buf[:0], Try); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatch64(b *testing.B) {
	r := benchRing(b, false)
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = make([]byte, 64)
	}
	buf := make([]byte, 0, 64*64)
	ends := make([]int, 0, 64)
	b.ReportAllocs()
	b.SetBytes(64 * 64)
	for b.Loop() {
		if n, err := r.PutBatch(msgs, Try); err != nil || n != len(msgs) {
			b.Fatalf("Put: %d, %v", n, err)
		}
		var n int
		var err error
		if buf, n, err = r.GetBatch(buf[:0], &ends, len(msgs), 0, Try); err != nil || n != len(msgs) {
			b.Fatalf("Get: %d, %v", n, err)
		}
		ends = ends[:0]
	}
}

func BenchmarkReceiveAck64(b *testing.B) {
	r := benchRing(b, false)
	msg := make([]byte, 64)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if err := r.Put(msg, Try); err != nil {
			b.Fatal(err)
		}
		var d Delivery
		var err error
		if buf, d, err = r.Receive(buf[:0], time.Minute, Try); err != nil {
			b.Fatal(err)
		}
		if err := r.Ack(d, false); err != nil {
			b.Fatal(err)
		}
	}
}

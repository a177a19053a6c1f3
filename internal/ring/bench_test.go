package ring

import (
	"testing"
	"time"
)

// BenchmarkRound puts a 64-byte message and takes it back, each way a
// consumer can: Get with the fault guard, Get without it (the ring of an
// anonymous queue, which cannot fault), and Receive then Ack. On heap
// memory and with no system calls, the ring's benchmarks measure the
// protocol alone; the mpq package's add the mapping and the waiting.
func BenchmarkRound(b *testing.B) {
	for _, bc := range []struct {
		name        string
		cannotFault bool
		round       func(r *Ring, msg, buf []byte) ([]byte, error)
	}{
		{"Get64", false, putGet},
		{"Get64NoFault", true, putGet},
		{"ReceiveAck64", false, putReceiveAck},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, msg, buf := benchRing(b, bc.cannotFault), make([]byte, 64), make([]byte, 0, 64)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				var err error
				if buf, err = bc.round(r, msg, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// putGet puts msg and gets it back into buf.
func putGet(r *Ring, msg, buf []byte) ([]byte, error) {
	if err := r.Put(msg, Try); err != nil {
		return buf, err
	}
	return r.Get(buf, Try)
}

// putReceiveAck puts msg, receives it into buf and acks it.
func putReceiveAck(r *Ring, msg, buf []byte) ([]byte, error) {
	if err := r.Put(msg, Try); err != nil {
		return buf, err
	}
	buf, d, err := r.Receive(buf, time.Minute, Try)
	if err != nil {
		return buf, err
	}
	return buf, r.Ack(d)
}

// BenchmarkBatch64 puts 64 messages of 64 bytes in one batch and takes them
// back in one.
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
			b.Fatalf("PutBatch: %d, %v", n, err)
		}
		var n int
		var err error
		if buf, n, err = r.GetBatch(buf[:0], &ends, len(msgs), 0, Try); err != nil || n != len(msgs) {
			b.Fatalf("GetBatch: %d, %v", n, err)
		}
		ends = ends[:0]
	}
}

// benchRing attaches a ring of 1 MiB for b; cannotFault skips the fault
// guard, as an anonymous queue's ring does.
func benchRing(b *testing.B, cannotFault bool) *Ring {
	r := attachT(b, newMem(b, 1<<20, 1<<16), newEnv(), 0)
	if cannotFault {
		r.CannotFault()
	}
	return r
}

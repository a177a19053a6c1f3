//go:build linux

package bench

import (
	"context"
	"fmt"
	"runtime"

	"github.com/mpq-go/mpq"
)

// allocRuns is how many operations the count averages over.
const allocRuns = 2000

// mpqAllocs counts heap allocations per message on mpq's zero-allocation
// path, in this process, on an anonymous queue with default options and a
// context that is never done: Put then AppendGet into a reused buffer, or,
// with batch, PutBatch of batchSize messages then GetBatch into a reused
// Batch. The queue never fills, so neither call waits.
func mpqAllocs(ctx context.Context, batch bool, size int) (Sample, error) {
	q, err := mpq.New(nil)
	if err != nil {
		return Sample{}, err
	}
	defer q.Close()
	ctx = context.WithoutCancel(ctx)
	msg := make([]byte, size)
	var opErr error
	check := func(err error) {
		if err != nil && opErr == nil {
			opErr = err
		}
	}

	var op func()
	perOp := 1.0
	if !batch {
		buf := make([]byte, 0, size)
		op = func() {
			check(q.Put(ctx, msg))
			buf, err = q.AppendGet(ctx, buf[:0])
			check(err)
		}
	} else {
		msgs := make([][]byte, batchSize)
		for i := range msgs {
			msgs[i] = msg
		}
		var b mpq.Batch
		op = func() {
			_, err := q.PutBatch(ctx, msgs)
			check(err)
			check(q.GetBatch(ctx, &b, batchSize))
			if b.Len() != batchSize {
				check(fmt.Errorf("GetBatch took %d messages; want %d", b.Len(), batchSize))
			}
		}
		perOp = batchSize
	}
	op() // grow the buffers first
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range allocRuns {
		op()
	}
	runtime.ReadMemStats(&after)
	if opErr != nil {
		return Sample{}, opErr
	}
	msgs := allocRuns * perOp
	return Sample{Msgs: int64(msgs), AllocsPerMsg: float64(after.Mallocs-before.Mallocs) / msgs}, nil
}

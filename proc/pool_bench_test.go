package proc_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mpq-go/mpq/proc"
)

// BenchmarkPoolMap maps x*x over 1 M ints with 2 workers; tasks/s is the
// figure (mpq bench's pool-map row measures the same against Python).
func BenchmarkPoolMap(b *testing.B) {
	p := newPool(b, squareTask, &proc.PoolOptions{Workers: 2})
	ins := make([]int, 1_000_000)
	for i := range ins {
		ins[i] = i
	}
	if _, err := p.Map(b.Context(), ins[:1000]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Map(b.Context(), ins); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ins))/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkPoolSubmit measures one Submit then Wait at a time.
func BenchmarkPoolSubmit(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprint("workers=", w), func(b *testing.B) { benchSubmit(b, w) })
	}
}

func benchSubmit(b *testing.B, workers int) {
	p := newPool(b, squareTask, &proc.PoolOptions{Workers: workers})
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		f, err := p.Submit(b.Context(), 3)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Wait(b.Context()); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkPoolCancel measures how long Map takes to return once its ctx
// is cancelled, with tasks in flight.
func BenchmarkPoolCancel(b *testing.B) {
	p := newPool(b, jobTask, &proc.PoolOptions{Workers: 2})
	slow := jobs(64, "slow", "")
	for i := range slow {
		slow[i].Wait = time.Second
	}
	var total time.Duration
	for b.Loop() {
		ctx, cancel := context.WithCancel(b.Context())
		errc := make(chan time.Time, 1)
		go func() {
			p.Map(ctx, slow)
			errc <- time.Now()
		}()
		for p.Stats().InFlight < len(slow) {
			time.Sleep(100 * time.Microsecond)
		}
		t0 := time.Now()
		cancel()
		total += (<-errc).Sub(t0)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/cancel")
}

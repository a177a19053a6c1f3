package examples

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/mpq-go/mpq/proc"
)

// countPrimes counts the primes below n by trial division: a task that
// keeps a CPU busy for a fraction of a millisecond.
var countPrimes = proc.DefineTask("examples.primes", func(ctx context.Context, n int) (int, error) {
	count := 0
	for k := 2; k < n; k++ {
		prime := true
		for d := 2; d*d <= k; d++ {
			if k%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			count++
		}
	}
	return count, nil
})

// poolReady runs in each worker before its first task.
var poolReady = proc.Define("examples.pool-ready", func(ctx context.Context) error {
	fmt.Printf("worker %d: ready\n", os.Getpid())
	return nil
})

// Pool counts the primes below each of 3,000 numbers in a pool of two
// worker processes, and SIGKILLs one of the workers midway: the pool
// replaces it, runs again the task it was running, and Map returns every
// result, in order, once. Pool checks them against a sieve, prints what
// happened to out, and returns the killed worker's and its replacement's
// process IDs.
func Pool(ctx context.Context, out io.Writer) (killed, replacement int, err error) {
	const tasks = 3000
	p, err := proc.NewPool(ctx, countPrimes, &proc.PoolOptions{Workers: 2, Init: poolReady,
		Proc: &proc.Options{Stdout: out, Stderr: os.Stderr}})
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	before := p.Pids()
	slices.Sort(before)
	fmt.Fprintf(out, "parent %d: pool of workers %d and %d, counting the primes below %d numbers\n",
		os.Getpid(), before[0], before[1], tasks)
	ins := make([]int, tasks)
	for i := range ins {
		ins[i] = 10_000 + i
	}
	victim := make(chan int, 1)
	go func() {
		for p.Stats().Done < tasks/2 {
			time.Sleep(time.Millisecond)
		}
		pid := p.Pids()[0]
		fmt.Fprintf(out, "parent %d: killing worker %d with SIGKILL, %d of %d tasks done\n", os.Getpid(), pid, p.Stats().Done, tasks)
		syscall.Kill(pid, syscall.SIGKILL)
		victim <- pid
	}()
	counts, err := p.Map(ctx, ins)
	if err != nil {
		return 0, 0, err
	}
	killed = <-victim
	if bad := checkPrimes(ins, counts); bad >= 0 {
		return 0, 0, fmt.Errorf("primes below %d: got %d", ins[bad], counts[bad])
	}
	for replacement == 0 {
		for _, pid := range p.Pids() {
			if !slices.Contains(before, pid) {
				replacement = pid
			}
		}
		time.Sleep(time.Millisecond)
	}
	s := p.Stats()
	fmt.Fprintf(out, "parent %d: all %d results back, in order and correct; worker %d was replaced by %d; %d task(s) run again, none lost\n",
		os.Getpid(), tasks, killed, replacement, s.Retried)
	return killed, replacement, p.Close()
}

// checkPrimes checks counts[i], the primes below ins[i], against a sieve,
// and returns the index of the first wrong one, or -1.
func checkPrimes(ins, counts []int) int {
	limit := slices.Max(ins)
	composite := make([]bool, limit)
	below := make([]int, limit+1) // primes below k
	for k := 2; k < limit; k++ {
		below[k+1] = below[k]
		if !composite[k] {
			below[k+1]++
			for m := k * k; m < limit; m += k {
				composite[m] = true
			}
		}
	}
	for i, n := range ins {
		if counts[i] != below[n] {
			return i
		}
	}
	return -1
}

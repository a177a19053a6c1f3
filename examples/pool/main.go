// Command pool runs a process pool that survives a worker's death: two
// worker processes count the primes below each of 3,000 numbers while the
// parent SIGKILLs one of them midway. The pool replaces the worker, runs
// the task it was running again, and every result comes back once, in
// order.
//
//	go run ./examples/pool
//
// The program is [examples.Pool] (examples/pool.go). Its workers are this
// program again, started by package proc: main begins with proc.Main.
package main

import (
	"context"
	"log"
	"os"

	"github.com/mpq-go/mpq/examples"
	"github.com/mpq-go/mpq/proc"
)

func main() {
	proc.Main() // in a worker process: serve the pool and exit
	if _, _, err := examples.Pool(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

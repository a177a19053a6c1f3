// Command mpq inspects, operates and benchmarks mpq queues: it creates and
// removes them, puts and gets messages, shows what is in them and who is
// attached, watches them live, serves their counters to Prometheus, runs
// the demo and the benchmark table.
//
//	go install ./cmd/mpq
//	mpq create jobs
//	mpq put jobs hello
//	mpq get jobs
//	mpq put nats://127.0.0.1:4222/jobs hello   # the same queue on NATS JetStream
//	mpq --help
//
// Exit status: 0 success, 1 failure, 2 usage error, 3 the queue does not
// exist, 4 timed out (nothing arrived, or no room, within --timeout), 5 the
// queue is sealed (and, for get, drained).
package main

import (
	"os"

	"github.com/mpq-go/mpq/cmd/mpq/internal/bench"
	"github.com/mpq-go/mpq/proc"
)

func main() {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	// The demo's child processes are this program again: proc.Main runs
	// the function a child was started for, and exits.
	proc.Main()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

//go:build linux

// Command bench measures mpq between real processes against baselines
// measured in the same run, prints one table and writes it as JSON.
//
// Run it from the module root:
//
//	go run ./bench                  # full run, a few minutes at most
//	go run ./bench -quick           # short run
//	go run ./bench -rows 1to1-64,rtt-64 -backends mpq,socket
//	go run ./bench -rows 1to1-64,4to4-64 -backends mpq,mpq-ack,mpq-durable-put,mpq-durable-10ms,mpq-durable-never
//
// Flags:
//
//	-json PATH      where to write the JSON (default bench/results/latest.json)
//	-quick          shorter runs and fewer repetitions
//	-rows LIST      rows to measure, by id (default all; see -h)
//	-backends LIST  contenders to measure, by id (default all)
//	-reps N         repetitions of each measurement (the median is shown)
//	-count N        message (or round-trip) limit of every run
//	-python PATH    Python 3 interpreter for the baselines (default python3)
//	-spin DURATION  mpq Options.Spin of every handle (default the library's)
//
// The contenders are mpq (Put / AppendGet), mpq with PutBatch / GetBatch,
// an mpq.Pipe (Send / Recv, and Send / AppendRecv), a unix socketpair with
// one write per message, Go channels inside one process, and Python's
// multiprocessing Queue and Pipe (internal/bench/baseline.py, embedded in
// the binary). Variants of mpq run the small-message throughput rows next to
// plain mpq, which they are compared with: acknowledgement mode (Put /
// Receive and Ack) 1->1 and 4->4, and durable queues on disk 1->1, one per
// Sync policy (every Put, every 10 ms, never), in a new directory under
// TMPDIR, which must not be tmpfs. Producers, consumers and echo servers are separate processes:
// the binary re-executes itself with the argument "child" and
// MPQ_BENCH_CHILD=1 in its environment, handing the child the queue, Pipe
// end or socket as inherited descriptors. The harness is package
// mpq/internal/bench, which `mpq bench` runs too; this command is its
// flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/bench"
)

func main() {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var progress func(bench.Progress)
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err == nil {
		progress = func(p bench.Progress) { fmt.Fprintf(os.Stderr, "\r\033[K%s", p.Step) }
	}
	rep, err := bench.Run(ctx, cfg, progress)
	if progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if rep != nil {
		if perr := bench.PrintTable(os.Stdout, rep); perr != nil && err == nil {
			err = perr
		}
		fmt.Printf("\nJSON: %s\n", cfg.JSONPath)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseFlags turns the command line into a config.
func parseFlags(args []string) (bench.Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c bench.Config
	var rowList, backendList string
	fs.StringVar(&c.JSONPath, "json", "bench/results/latest.json", "write the results as JSON to `path`")
	fs.BoolVar(&c.Quick, "quick", false, "short runs, fewer repetitions")
	fs.StringVar(&rowList, "rows", "", "comma-separated rows to measure (default all): "+strings.Join(bench.RowIDs(), ", "))
	fs.StringVar(&backendList, "backends", "", "comma-separated contenders to measure (default all): "+strings.Join(bench.BackendIDs(), ", "))
	fs.IntVar(&c.Reps, "reps", 0, "repetitions of each measurement (default 5, or 3 with -quick)")
	fs.IntVar(&c.Count, "count", 0, "if > 0, the message (or round-trip) limit of every run")
	fs.StringVar(&c.Python, "python", "python3", "Python 3 interpreter for the baselines")
	fs.Func("spin", "mpq Options.Spin `duration` of every handle (default: the library's)", func(v string) error {
		d, err := time.ParseDuration(v)
		c.Spin = d
		return err
	})
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Rows, c.Backends = splitList(rowList), splitList(backendList)
	return c, nil
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Package bench measures mpq between real processes against baselines
// measured in the same run: it is the harness behind `mpq bench`.
//
// # Contenders
//
// The contenders are mpq (Put / AppendGet), mpq with PutBatch / GetBatch,
// an mpq.Pipe (Send / Recv, and Send / AppendRecv), a unix socketpair with
// one write per message, Go channels inside one process, and Python's
// multiprocessing Queue and Pipe (baseline.py, embedded in the package).
// Variants of mpq run the small-message throughput rows next to plain mpq,
// which they are compared with: acknowledgement mode (Put / Receive and
// Ack) 1->1 and 4->4, and durable queues on disk 1->1, one per Sync policy
// (every Put, every 10 ms, never), in a new directory under TMPDIR, which
// must not be tmpfs.
//
// The process pool rows have contenders of their own, which run nothing
// else: mpq's proc.Pool, Python's multiprocessing.Pool and its
// concurrent.futures.ProcessPoolExecutor, each with 2 worker processes,
// mapping x*x over ints (tasks/s) and submitting one int at a time and
// waiting for its square (latency). The pools are made and warmed before
// the timing starts.
//
// # Child processes
//
// Producers, consumers and echo servers are separate processes: [Run]
// re-executes the running binary (os.Executable) with the argument "child"
// and MPQ_BENCH_CHILD=1 in its environment, handing the child the queue,
// Pipe end or socket as inherited descriptors. So a program that calls Run
// must start with
//
//	if bench.IsChild() {
//		os.Exit(bench.ChildMain())
//	}
//	proc.Main()
//
// before anything else reads its arguments. The pool rows' workers are
// that binary too, run by proc.Main, which must come next.
//
// # Platform support
//
// The harness measures Linux: it reads /proc, uses Pdeathsig and
// SOCK_SEQPACKET socket pairs. Elsewhere Run returns an error wrapping
// errors.ErrUnsupported; the report types, [PrintTable] and the id lists
// work everywhere.
package bench

import (
	"context"
	"io"
	"time"
)

// Config says what [Run] measures. The zero Config measures every row with
// every contender, as a full run.
type Config struct {
	// JSONPath, if not empty, is where Run writes the report as JSON,
	// creating its directory.
	JSONPath string
	// Quick makes the runs shorter and, unless Reps says otherwise, fewer.
	Quick bool
	// Reps is the repetitions of each measurement; the median is reported.
	// Default 5, or 3 if Quick. The idle row takes at most 3 (each lasts 2 s).
	Reps int
	// Count, if > 0, is the message (round-trip, pool task) limit of
	// every run.
	Count int
	// Python is the Python 3 interpreter of the baselines. Default python3.
	Python string
	// Rows and Backends are the ids of the rows and contenders to measure
	// (see [RowIDs] and [BackendIDs]); empty means all.
	Rows     []string
	Backends []string
	// Spin, if not 0, is the mpq Options.Spin of every handle the harness
	// and its children open. Run sets it in the process environment, as
	// MPQ_BENCH_SPIN, while it runs. Default: the variable as found, else
	// the library's default.
	Spin time.Duration
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	if c.Reps <= 0 {
		c.Reps = 5
		if c.Quick {
			c.Reps = 3
		}
	}
	if c.Python == "" {
		c.Python = "python3"
	}
	return c
}

// Progress says how far a [Run] has got.
type Progress struct {
	// Done of Total measurements are taken: one measurement is one
	// repetition of one row with one contender. Total is known from the
	// start; a contender that failed once is not run again, and its
	// remaining repetitions count as done.
	Done, Total int
	// Step describes the measurement under way, like "1->1 64 B, mpq:
	// run 1 of 3"; it is empty once all are done.
	Step string
}

// Run measures what cfg selects, writes the JSON file if cfg.JSONPath is
// set and returns the report. progress, if not nil, is called before each
// measurement and once more when all are done, from the goroutine that
// called Run.
//
// Run returns an error naming the valid ids if cfg names an unknown row or
// contender, before measuring anything. It returns an error if a
// measurement failed, the file could not be written or ctx was done
// (ctx.Err(), unchanged: the children are killed); the report is returned
// too whenever measurements were taken.
func Run(ctx context.Context, cfg Config, progress func(Progress)) (*Report, error) {
	return run(ctx, cfg.withDefaults(), progress)
}

// PrintTable writes rep as one text table: the machine and settings, a
// line per row and contender, a legend, then the targets.
func PrintTable(w io.Writer, rep *Report) error { return printTable(w, rep) }

// RowIDs returns the ids of the rows, in table order.
func RowIDs() []string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.id)
	}
	return ids
}

// BackendIDs returns the ids of the contenders, in table order.
func BackendIDs() []string {
	var ids []string
	for _, c := range contenderTable {
		ids = append(ids, c.id)
	}
	return ids
}

// IsChild reports whether this process is a child process of the harness:
// a copy of the running binary started by [Run], which must then call
// [ChildMain] and exit.
func IsChild() bool { return isChild() }

// ChildMain runs this process as a child of the harness and returns its
// exit code.
func ChildMain() int { return childMain() }

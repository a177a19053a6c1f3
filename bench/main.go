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
// multiprocessing Queue and Pipe (bench/baseline.py, embedded in the
// binary). Variants of mpq run the small-message throughput rows next to
// plain mpq, which they are compared with: acknowledgement mode (Put /
// Receive and Ack) 1->1 and 4->4, and durable queues on disk 1->1, one per
// Sync policy (every Put, every 10 ms, never), in a new directory under
// TMPDIR, which must not be tmpfs. Producers, consumers and echo servers are separate processes:
// the binary re-executes itself with the argument "child" and
// MPQ_BENCH_CHILD=1 in its environment, handing the child the queue, Pipe
// end or socket as inherited descriptors.
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
)

func main() {
	if isChild() {
		os.Exit(childMain())
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var progress func(string)
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err == nil {
		progress = func(s string) { fmt.Fprintf(os.Stderr, "\r\033[K%s", s) }
	}
	rep, err := run(ctx, cfg, progress)
	if progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if rep != nil {
		if perr := printTable(os.Stdout, rep); perr != nil && err == nil {
			err = perr
		}
		fmt.Printf("\nJSON: %s\n", cfg.jsonPath)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseFlags turns the command line into a config.
func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	var rowList, backendList string
	fs.StringVar(&c.jsonPath, "json", "bench/results/latest.json", "write the results as JSON to `path`")
	fs.BoolVar(&c.quick, "quick", false, "short runs, fewer repetitions")
	fs.StringVar(&rowList, "rows", "", "comma-separated rows to measure (default all): "+rowIDs())
	fs.StringVar(&backendList, "backends", "", "comma-separated contenders to measure (default all): "+backendIDs())
	fs.IntVar(&c.reps, "reps", 0, "repetitions of each measurement (default 5, or 3 with -quick)")
	fs.IntVar(&c.count, "count", 0, "if > 0, the message (or round-trip) limit of every run")
	fs.StringVar(&c.python, "python", "python3", "Python 3 interpreter for the baselines")
	fs.Func("spin", "mpq Options.Spin `duration` of every handle (default: the library's)", func(v string) error {
		if _, err := time.ParseDuration(v); err != nil {
			return err
		}
		return os.Setenv(spinEnv, v) // read by the harness and its children
	})
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.reps <= 0 {
		c.reps = 5
		if c.quick {
			c.reps = 3
		}
	}
	c.rows, c.backends = splitList(rowList), splitList(backendList)
	return c, nil
}

func rowIDs() string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.id)
	}
	return strings.Join(ids, ", ")
}

func backendIDs() string {
	var ids []string
	for _, c := range contenders("", "") {
		ids = append(ids, c.id)
	}
	return strings.Join(ids, ", ")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// run measures what cfg selects, writes the JSON file and returns the
// report. It returns an error if a measurement failed or the file could not
// be written; the report is returned whenever measurements were taken.
func run(ctx context.Context, cfg config, progress func(string)) (*report, error) {
	rs, err := selected("row", rows, func(r row) string { return r.id }, cfg.rows)
	if err != nil {
		return nil, err
	}
	script, cleanup, err := writeScript()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cs, err := selected("backend", contenders(cfg.python, script), func(c contender) string { return c.id }, cfg.backends)
	if err != nil {
		return nil, err
	}

	goB, pyB := cfg.budgets()
	rep := &report{
		Time:    time.Now(),
		Machine: describeMachine(ctx, cfg.python, script),
		Settings: settings{
			Quick: cfg.quick, Reps: cfg.reps, Go: toJSON(goB), Python: toJSON(pyB),
			Backends:  map[string]string{},
			MpqConfig: mpqConfig(),
			RatioNote: ratioNote,
		},
	}
	for _, r := range rs {
		rep.Settings.Rows = append(rep.Settings.Rows, r.id)
	}
	for _, c := range cs {
		rep.Settings.Backends[c.id] = c.note
		if p, ok := c.b.(*procBackend); ok && isOwned(p.t) {
			rep.Settings.PipeConfig = pipeConfig()
		}
		if p, ok := c.b.(*procBackend); ok && isDurable(p.t) {
			rep.Settings.DurableConfig = durableConfig()
		}
	}
	rep.Results = measureAll(ctx, cfg, rs, cs, progress)
	rep.Ratios = ratios(rep.Results)
	rep.Targets = check(rep.Results, rep.Ratios)

	var failed []string
	for _, r := range rep.Results {
		if r.Error != "" {
			failed = append(failed, r.Case+" / "+r.Label)
		}
	}
	if err := writeJSON(cfg.jsonPath, rep); err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%d measurements failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return rep, nil
}

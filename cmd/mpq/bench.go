package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/bench"
	"github.com/mpq-go/mpq/natsq/natsbench"
)

func init() { commands = append(commands, newBenchCmd) }

func newBenchCmd(e *env) *cobra.Command {
	var (
		cfg                  bench.Config
		rowList, backendList string
		plotPath, fromPath   string
		size                 int
		defaultJSON          = benchJSONPath()
	)
	c := &cobra.Command{
		Use:   "bench [nats://HOST:PORT]",
		Short: "Measure mpq between processes against baselines, as a table and a chart",
		Long: `bench measures mpq between real processes against baselines measured in
the same run (a unix socket, Go channels, Python's multiprocessing Queue
and Pipe), prints one table and writes it as JSON. A full run takes a few
minutes; --quick about half a minute. Producers, consumers and echo
servers are copies of this program.

With --plot FILE.png or FILE.svg it also draws the throughput of the 1->1
rows against message size and a histogram of the round-trip times.

Rows, for --rows:
` + benchWrap(bench.RowIDs()) + `
Contenders, for --backends:
` + benchWrap(bench.BackendIDs()) + `

The durable contenders need TMPDIR on a disk filesystem, not tmpfs; the
Python ones python3 (or --python). Exit status 1 if a measurement failed.

With a URL, nats://[USER[:PASSWORD]@]HOST[:PORT], bench measures the NATS
backend (github.com/mpq-go/mpq/natsq) against raw nats.go on that server instead, in the
same run: publish and consume of --size-byte messages, and publish from
several producers, each row the median of --reps runs of --count messages
(--runs and --messages are other names for these two). The server needs
JetStream; every run uses a stream of its own, deleted after it. --json
FILE writes the report. No URL, or shm:, is the shared-memory benchmark.`,
		Example: `  mpq bench --quick --plot bench.png
  mpq bench --rows 1to1-64,rtt-64 --backends mpq,socket,py-pipe
  mpq bench --json results.json --plot results.svg
  mpq bench --from bench/results/latest.json --plot bench.png
  mpq bench nats://127.0.0.1:4222 --reps 3 --json nats.json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage("%s: want at most one URL, got %q", c.CommandPath(), args)
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "shm:" {
				if cfg.Reps < 0 || cfg.Count < 0 || size < 0 {
					return usage("--reps, --count and --size take a positive number, or 0 for the default")
				}
				ncfg := natsbench.Config{Size: size, Messages: cfg.Count, Runs: cfg.Reps}
				if cfg.Quick {
					ncfg.Messages = cmp.Or(ncfg.Messages, natsbench.DefaultMessages/4)
					ncfg.Runs = cmp.Or(ncfg.Runs, 3)
				}
				jsonPath := ""
				if c.Flags().Changed("json") {
					jsonPath = cfg.JSONPath
				}
				return benchNATS(c, e, args[0], ncfg, jsonPath)
			}
			if c.Flags().Changed("size") {
				return usage("--size is for the NATS benchmark (mpq bench nats://HOST:PORT); the shared-memory rows have sizes of their own (--rows)")
			}
			if plotPath != "" {
				if _, err := plotFormat(plotPath); err != nil {
					return err
				}
			}
			if fromPath != "" {
				return showBench(e, fromPath, plotPath)
			}
			cfg.Rows, cfg.Backends = splitIDs(rowList), splitIDs(backendList)
			if err := checkIDs("row", "--rows", cfg.Rows, bench.RowIDs()); err != nil {
				return err
			}
			if err := checkIDs("contender", "--backends", cfg.Backends, bench.BackendIDs()); err != nil {
				return err
			}
			if cfg.Reps < 0 || cfg.Count < 0 {
				return usage("--reps and --count take a positive number, or 0 for the default")
			}
			return runBench(c.Context(), e, cfg, plotPath)
		},
	}
	f := c.Flags()
	f.BoolVar(&cfg.Quick, "quick", false, "short runs, fewer repetitions")
	f.StringVar(&rowList, "rows", "", "comma-separated `ids` of the rows to measure (default all)")
	f.StringVar(&backendList, "backends", "", "comma-separated `ids` of the contenders to measure (default all)")
	f.IntVar(&cfg.Reps, "reps", 0, "repetitions of each measurement, the median shown (default 5, or 3 with --quick)")
	f.IntVar(&cfg.Count, "count", 0, "if > 0, the message (or round-trip) limit of every run")
	f.StringVar(&cfg.Python, "python", "python3", "Python 3 interpreter for the baselines")
	f.DurationVar(&cfg.Spin, "spin", 0, "mpq Options.Spin of every handle (default: the library's)")
	f.StringVar(&cfg.JSONPath, "json", defaultJSON, "write the results as JSON to `file` ('' for none)")
	f.StringVar(&plotPath, "plot", "", "draw the results into `file`, a .png or .svg")
	f.StringVar(&fromPath, "from", "", "measure nothing: print (and --plot) the results in an earlier run's JSON `file`")
	f.IntVar(&size, "size", 0, "NATS only: message size in `bytes` (default 64)")
	f.SetNormalizeFunc(func(f *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "runs":
			name = "reps"
		case "messages":
			name = "count"
		}
		return pflag.NormalizedName(name)
	})
	return c
}

// benchJSONPath is where bench writes its JSON by default: latest.json in
// the per-user cache directory, else a file of the user's in the temporary
// directory.
func benchJSONPath() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "mpq", "bench", "latest.json")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("mpq-bench-%d.json", os.Getuid()))
}

// benchWrap lists ids for the help, indented, in lines of at most 76
// characters.
func benchWrap(ids []string) string {
	var b strings.Builder
	line := 0
	for i, id := range ids {
		if i < len(ids)-1 {
			id += ","
		}
		if line > 2 && line+1+len(id) > 76 {
			b.WriteString("\n")
			line = 0
		}
		if line == 0 {
			b.WriteString("  ")
			line = 2
		} else {
			b.WriteString(" ")
			line++
		}
		b.WriteString(id)
		line += len(id)
	}
	return b.String()
}

// splitIDs splits a comma-separated list, dropping empty entries.
func splitIDs(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkIDs returns a usage error naming the valid ids if ids has another.
func checkIDs(what, flag string, ids, valid []string) error {
	for _, id := range ids {
		if !slices.Contains(valid, id) {
			return usage("%s: unknown %s %q; valid: %s", flag, what, id, strings.Join(valid, ", "))
		}
	}
	return nil
}

// runBench runs the harness with a progress bar on a terminal, prints the
// table and says where the JSON and the chart went.
// showBench prints, and plots if plotPath is set, the report in the JSON
// file at path, which an earlier run (mpq bench or go run ./bench) wrote.
func showBench(e *env, path, plotPath string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fail(exitFailure, "bench --from: %v", err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Results) == 0 {
		if err == nil {
			err = errors.New("no results in it")
		}
		return fail(exitFailure, "bench --from: %s is not the JSON of a bench run (%v)", path, err)
	}
	if err := bench.PrintTable(e.stdout, &rep); err != nil {
		return err
	}
	if plotPath != "" {
		if err := writePlot(plotPath, &rep); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "\nplot: %s\n", plotPath)
	}
	return nil
}

func runBench(ctx context.Context, e *env, cfg bench.Config, plotPath string) error {
	bar := newBenchBar(e)
	rep, err := bench.Run(ctx, cfg, bar.update)
	bar.done()
	if ctx.Err() != nil {
		return fmt.Errorf("bench interrupted: %w", ctx.Err())
	}
	if rep == nil {
		return err
	}
	if perr := bench.PrintTable(e.stdout, rep); perr != nil {
		return perr
	}
	fmt.Fprintln(e.stdout)
	if cfg.JSONPath != "" {
		fmt.Fprintf(e.stdout, "JSON: %s\n", cfg.JSONPath)
	}
	if plotPath != "" {
		if perr := writePlot(plotPath, rep); perr != nil {
			return errors.Join(err, perr)
		}
		fmt.Fprintf(e.stdout, "plot: %s\n", plotPath)
	}
	return err
}

// benchBar shows a [bench.Run]'s progress as a bar on stderr, if that is a
// terminal; otherwise it shows nothing.
type benchBar struct {
	w   *os.File
	bar *progressbar.ProgressBar
}

func newBenchBar(e *env) *benchBar {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &benchBar{}
	}
	return &benchBar{w: f}
}

// update is the progress function of the run.
func (b *benchBar) update(p bench.Progress) {
	if b.w == nil {
		return
	}
	if b.bar == nil {
		b.bar = progressbar.NewOptions(p.Total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetWidth(24),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	b.bar.Describe(p.Step)
	b.bar.Set(p.Done)
}

// done removes the bar.
func (b *benchBar) done() {
	if b.bar != nil {
		b.bar.Clear()
		b.bar = nil
	}
}

// natsOnlyNot are the flags of the shared-memory benchmark that the NATS
// one has no use for.
var natsOnlyNot = []string{"rows", "backends", "python", "spin", "plot", "from"}

// benchNATS runs the NATS rows against the server at rawURL, prints the
// table and writes the report as JSON to jsonPath, if not "".
func benchNATS(c *cobra.Command, e *env, rawURL string, cfg natsbench.Config, jsonPath string) error {
	for _, name := range natsOnlyNot {
		if c.Flags().Changed(name) {
			return usage("--%s is for the shared-memory benchmark; the NATS one takes --reps, --count, --size, --quick and --json", name)
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return usage("bench: %s is not a URL: %v", mpq.RedactURL(rawURL), err)
	}
	shown := u.Redacted()
	if !strings.EqualFold(u.Scheme, "nats") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Opaque != "" {
		return usage("bench: %s: want nats://HOST:PORT, a NATS server's URL with no queue name (or no URL, or shm:, for the shared-memory benchmark)", shown)
	}
	u.Path = ""
	cfg.URL = u.String()
	ref := &queueRef{e: e, u: u, scheme: "nats", name: "(bench)", server: shown}

	progress := func(string) {}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = func(msg string) { fmt.Fprintf(f, "\r\033[Kbench %s: %s", shown, msg) }
		defer fmt.Fprint(f, "\r\033[K")
	}
	rep, err := natsbench.Run(c.Context(), cfg, progress)
	if c.Context().Err() != nil {
		return fmt.Errorf("bench interrupted: %w", c.Context().Err())
	}
	if len(rep.Rows) > 0 {
		rep.Config.URL = shown
		if perr := rep.Print(e.stdout); perr != nil {
			return perr
		}
		if jsonPath != "" {
			f, ferr := os.Create(jsonPath)
			if ferr == nil {
				ferr = writeJSON(f, rep)
				if cerr := f.Close(); ferr == nil {
					ferr = cerr
				}
			}
			if ferr != nil {
				return errors.Join(err, fail(exitFailure, "bench: writing the report: %v", ferr))
			}
			fmt.Fprintf(e.stdout, "\nJSON: %s\n", jsonPath)
		}
	}
	if err != nil {
		var opErr *net.OpError
		msg := ref.scrub(err.Error())
		if errors.Is(err, nats.ErrNoServers) || errors.As(err, &opErr) {
			return fail(exitFailure, "could not reach the NATS server at %s (%s)", shown, msg)
		}
		return fail(exitFailure, "bench against %s: %s", shown, msg)
	}
	return nil
}

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
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/cmd/mpq/internal/bench"
	"github.com/mpq-go/mpq/cmd/mpq/internal/natsbench"
)

// benchFlags are the settings of one mpq bench: the harness's Config and
// what the command adds around it.
type benchFlags struct {
	cfg                  bench.Config
	rowList, backendList string
	plotPath, fromPath   string
	cpuProfile           string
	size                 int
}

func newBenchCmd(e *env) *cobra.Command {
	var o benchFlags
	c := &cobra.Command{
		Use:   "bench [nats: | nats://HOST:PORT]",
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
JetStream; every run uses a stream of its own, deleted after it. The bare
scheme, nats:, starts a nats-server in this process instead, on a random
port of 127.0.0.1, its store in a new directory under TMPDIR removed at the
end. No URL, or shm:, is the shared-memory benchmark.

--json FILE writes the report; --json '' writes none. Without --json, run
from the root of the mpq repository, bench writes the files the README
shows: bench/results/latest.json (shared memory) and
natsq/bench/results/latest.json (NATS). Elsewhere the shared-memory report
goes to latest.json in the user's cache directory, and the NATS one
nowhere.`,
		Example: `  mpq bench --quick --plot bench.png
  mpq bench --rows 1to1-64,rtt-64 --backends mpq,socket,py-pipe
  mpq bench --json results.json --plot results.svg
  mpq bench --from bench/results/latest.json --plot bench.png
  mpq bench nats://127.0.0.1:4222 --reps 3 --json nats.json
  mpq bench nats:`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage("%s: want at most one URL, got %q", c.CommandPath(), args)
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			stop, err := startCPUProfile(o.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			if len(args) == 1 && args[0] != "shm:" {
				return o.runNATS(c, e, args[0])
			}
			return o.runSHM(c, e)
		},
	}
	o.register(c.Flags())
	return c
}

// register defines the flags of bench.
func (o *benchFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&o.cfg.Quick, "quick", false, "short runs, fewer repetitions")
	f.StringVar(&o.rowList, "rows", "", "comma-separated `ids` of the rows to measure (default all)")
	f.StringVar(&o.backendList, "backends", "", "comma-separated `ids` of the contenders to measure (default all)")
	f.IntVar(&o.cfg.Reps, "reps", 0, "repetitions of each measurement, the median shown (default 5, or 3 with --quick)")
	f.IntVar(&o.cfg.Count, "count", 0, "if > 0, the message (or round-trip) limit of every run")
	f.StringVar(&o.cfg.Python, "python", "python3", "Python 3 interpreter for the baselines")
	f.DurationVar(&o.cfg.Spin, "spin", 0, "mpq Options.Spin of every handle (default: the library's)")
	f.StringVar(&o.cfg.JSONPath, "json", "", "write the results as JSON to `file` ('' for none; default: see above)")
	f.StringVar(&o.plotPath, "plot", "", "draw the results into `file`, a .png or .svg")
	f.StringVar(&o.fromPath, "from", "", "measure nothing: print (and --plot) the results in an earlier run's JSON `file`")
	f.IntVar(&o.size, "size", 0, "NATS only: message size in `bytes` (default 64)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (not of its children) to `file`")
	f.SetNormalizeFunc(func(f *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "runs":
			name = "reps"
		case "messages":
			name = "count"
		}
		return pflag.NormalizedName(name)
	})
}

// runSHM runs (or, with --from, shows) the shared-memory benchmark.
func (o *benchFlags) runSHM(c *cobra.Command, e *env) error {
	if c.Flags().Changed("size") {
		return usage("--size is for the NATS benchmark (mpq bench nats://HOST:PORT); the shared-memory rows have sizes of their own (--rows)")
	}
	if o.plotPath != "" {
		if _, err := plotFormat(o.plotPath); err != nil {
			return err
		}
	}
	if o.fromPath != "" {
		return showBench(e, o.fromPath, o.plotPath)
	}
	cfg := o.cfg
	cfg.Rows, cfg.Backends = splitIDs(o.rowList), splitIDs(o.backendList)
	if err := checkIDs("row", "--rows", cfg.Rows, bench.RowIDs()); err != nil {
		return err
	}
	if err := checkIDs("contender", "--backends", cfg.Backends, bench.BackendIDs()); err != nil {
		return err
	}
	if cfg.Reps < 0 || cfg.Count < 0 {
		return usage("--reps and --count take a positive number, or 0 for the default")
	}
	cfg.JSONPath = o.jsonPath(c, shmResults, benchJSONPath())
	return runBench(c.Context(), e, cfg, o.plotPath)
}

// runNATS runs the NATS benchmark against the server at rawURL, or one of
// its own for "nats:".
func (o *benchFlags) runNATS(c *cobra.Command, e *env, rawURL string) error {
	if o.cfg.Reps < 0 || o.cfg.Count < 0 || o.size < 0 {
		return usage("--reps, --count and --size take a positive number, or 0 for the default")
	}
	ncfg := natsbench.Config{Size: o.size, Messages: o.cfg.Count, Runs: o.cfg.Reps}
	if o.cfg.Quick {
		ncfg.Messages = cmp.Or(ncfg.Messages, natsbench.DefaultMessages/4)
		ncfg.Runs = cmp.Or(ncfg.Runs, 3)
	}
	return benchNATS(c, e, rawURL, ncfg, o.jsonPath(c, natsResults, ""))
}

// The reports the README shows, relative to the root of the repository.
const (
	shmResults  = "bench/results/latest.json"
	natsResults = "natsq/bench/results/latest.json"
)

// jsonPath is where the report goes: --json if given; else inRepo, relative
// to the repository's root, when that is the current directory; else
// elsewhere ("" for nowhere).
func (o *benchFlags) jsonPath(c *cobra.Command, inRepo, elsewhere string) string {
	if c.Flags().Changed("json") {
		return o.cfg.JSONPath
	}
	if atRepoRoot() {
		return inRepo
	}
	return elsewhere
}

// atRepoRoot reports whether the current directory is the root of the mpq
// repository: its go.mod is the library's.
func atRepoRoot() bool {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(mod), `"`) == "github.com/mpq-go/mpq"
		}
	}
	return false
}

// startCPUProfile starts a CPU profile into path, if not "", and returns
// the function that stops it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fail(exitFailure, "bench --cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fail(exitFailure, "bench --cpuprofile: %v", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
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

// showBench prints, and plots if plotPath is set, the report in the JSON
// file at path, which an earlier run of mpq bench wrote.
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

// runBench runs the harness with a progress bar on a terminal, prints the
// table and says where the JSON and the chart went.
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

// A natsServer is the server a NATS benchmark runs against.
type natsServer struct {
	url   string    // what natsbench connects to
	shown string    // the URL without its password, for messages and the report
	where string    // for the JSON: the embedded server, or "" for the user's
	ref   *queueRef // scrubs passwords from errors
	stop  func()    // shuts an embedded server down and removes its store
}

// natsTarget parses rawURL, a server's nats:// URL with no queue name, or
// starts a server in the process for the bare scheme "nats:".
func natsTarget(e *env, rawURL string) (*natsServer, error) {
	if strings.EqualFold(rawURL, "nats:") {
		return embeddedNATS()
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, usage("bench: %s is not a URL: %v", mpq.RedactURL(rawURL), err)
	}
	shown := u.Redacted()
	if !strings.EqualFold(u.Scheme, "nats") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Opaque != "" {
		return nil, usage("bench: %s: want nats://HOST:PORT, a NATS server's URL with no queue name (or nats: for a server of its own; or no URL, or shm:, for the shared-memory benchmark)", shown)
	}
	u.Path = ""
	ref := &queueRef{e: e, u: u, scheme: "nats", name: "(bench)", server: shown}
	return &natsServer{url: u.String(), shown: shown, ref: ref, stop: func() {}}, nil
}

// embeddedNATS starts a nats-server with JetStream in the process, its
// store in a new directory under TMPDIR.
func embeddedNATS() (*natsServer, error) {
	dir, err := os.MkdirTemp("", "natsq-bench-")
	if err != nil {
		return nil, fail(exitFailure, "bench: %v", err)
	}
	s, err := natsbench.StartServer(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fail(exitFailure, "bench: %v", err)
	}
	u := s.ClientURL()
	return &natsServer{
		url: u, shown: u,
		where: fmt.Sprintf("embedded nats-server %s at %s, JetStream store in %s", server.VERSION, u, dir),
		ref:   &queueRef{scheme: "nats", name: "(bench)", server: u},
		stop:  func() { s.Shutdown(); s.WaitForShutdown(); os.RemoveAll(dir) },
	}, nil
}

// benchNATS runs the NATS rows against the server at rawURL (or one of its
// own), prints the table and writes the report as JSON to jsonPath, if not
// "".
func benchNATS(c *cobra.Command, e *env, rawURL string, cfg natsbench.Config, jsonPath string) error {
	for _, name := range natsOnlyNot {
		if c.Flags().Changed(name) {
			return usage("--%s is for the shared-memory benchmark; the NATS one takes --reps, --count, --size, --quick and --json", name)
		}
	}
	srv, err := natsTarget(e, rawURL)
	if err != nil {
		return err
	}
	defer srv.stop()
	cfg.URL = srv.url
	progress := func(string) {}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = func(msg string) { fmt.Fprintf(f, "\r\033[Kbench %s: %s", srv.shown, msg) }
		defer fmt.Fprint(f, "\r\033[K")
	}
	rep, err := natsbench.Run(c.Context(), cfg, progress)
	if c.Context().Err() != nil {
		return fmt.Errorf("bench interrupted: %w", c.Context().Err())
	}
	if len(rep.Rows) > 0 {
		rep.Config.URL = srv.shown
		if perr := rep.Print(e.stdout); perr != nil {
			return perr
		}
		if jerr := writeNATSReport(e, jsonPath, srv.where, rep); jerr != nil {
			return errors.Join(err, jerr)
		}
	}
	if err != nil {
		var opErr *net.OpError
		msg := srv.ref.scrub(err.Error())
		if errors.Is(err, nats.ErrNoServers) || errors.As(err, &opErr) {
			return fail(exitFailure, "could not reach the NATS server at %s (%s)", srv.shown, msg)
		}
		return fail(exitFailure, "bench against %s: %s", srv.shown, msg)
	}
	return nil
}

// writeNATSReport writes rep, with where the server was (if not ""), as
// JSON to path, if not "", and says so.
func writeNATSReport(e *env, path, where string, rep natsbench.Report) error {
	if path == "" {
		return nil
	}
	out := struct {
		natsbench.Report
		Server string `json:"server,omitempty"`
	}{rep, where}
	f, err := os.Create(path)
	if err == nil {
		err = writeJSON(f, out)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fail(exitFailure, "bench: writing the report: %v", err)
	}
	fmt.Fprintf(e.stdout, "\nJSON: %s\n", path)
	return nil
}

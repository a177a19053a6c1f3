//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs one mpq row between real processes with a small count,
// writes the JSON and checks that it parses and holds positive figures.
func TestQuickRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results", "out.json")
	cfg := Config{Quick: true, Reps: 1, Count: 2000, Rows: []string{"1to1-64"}, Backends: []string{"mpq"}, JSONPath: path}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := printTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "1->1 64 B") {
		t.Errorf("table lacks the row:\n%s", table.String())
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, data)
	}
	if len(got.Results) != 1 {
		t.Fatalf("got %d results; want 1", len(got.Results))
	}
	r := got.Results[0]
	if r.Row != "1to1-64" || r.Backend != "mpq" || r.Error != "" {
		t.Errorf("got result %s/%s error %q; want 1to1-64/mpq without error", r.Row, r.Backend, r.Error)
	}
	if r.Metric != "msgs_per_sec" || r.Value <= 0 || r.Median.MBPerSec <= 0 || r.Median.Msgs != 2000 {
		t.Errorf("got %s %v, %v MB/s, %d msgs; want positive msgs_per_sec and MB/s over 2000 msgs", r.Metric, r.Value, r.Median.MBPerSec, r.Median.Msgs)
	}
	if got.Machine.NumCPU <= 0 || got.Machine.Go == "" {
		t.Errorf("machine not described: %+v", got.Machine)
	}
	if len(got.Targets) != len(goals) {
		t.Errorf("got %d targets; want %d", len(got.Targets), len(goals))
	}
}

// TestPipeRun runs the Pipe contenders between real processes on every row
// that applies to them, and none that does not, with a small count: each
// stream must end when its producer closes its end.
func TestPipeRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	cfg := Config{Quick: true, Reps: 1, Count: 2000, Rows: []string{"1to1-64", "1to1-64k", "4to4-64", "rtt-64", "idle"},
		Backends: []string{"mpq-pipe", "mpq-pipe-append"}, JSONPath: path}
	rep, got := runCounted(t, cfg)
	want := []string{"1to1-64/mpq-pipe", "1to1-64/mpq-pipe-append", "1to1-64k/mpq-pipe", "1to1-64k/mpq-pipe-append",
		"rtt-64/mpq-pipe", "rtt-64/mpq-pipe-append"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got results %v; want %v", got, want)
	}
	for _, tg := range rep.Targets {
		if tg.Name == "Pipe round trip 64 B p50" && (tg.Status == "N/A" || !strings.Contains(tg.Got, "mpq-pipe ")) {
			t.Errorf("target %q: got %q, status %s; want it judged on mpq-pipe", tg.Name, tg.Got, tg.Status)
		}
	}
}

// TestVariantRun runs plain mpq and its variants (acknowledgements, durable
// queues) between real processes on the rows the variants take, with a
// small count, and checks that each variant is compared with plain mpq.
func TestVariantRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	cfg := Config{Quick: true, Reps: 1, Count: 2000, Rows: []string{"1to1-64", "4to4-64", "rtt-64"},
		Backends: append([]string{"mpq"}, variantIDs...), JSONPath: path}
	rep, got := runCounted(t, cfg) // an fsync per Put is slow
	want := []string{"1to1-64/mpq", "1to1-64/mpq-ack", "1to1-64/mpq-durable-put", "1to1-64/mpq-durable-10ms", "1to1-64/mpq-durable-never",
		"4to4-64/mpq", "4to4-64/mpq-ack", "rtt-64/mpq"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got results %v; want %v", got, want)
	}
	var names []string
	for _, r := range rep.Ratios {
		names = append(names, r.Row+":"+r.Name)
	}
	wantNames := []string{"1to1-64:mpq/mpq-ack", "1to1-64:mpq/mpq-durable-put", "1to1-64:mpq/mpq-durable-10ms", "1to1-64:mpq/mpq-durable-never", "4to4-64:mpq/mpq-ack"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("got ratios %v; want %v", names, wantNames)
	}
	if rep.Settings.DurableConfig == "" {
		t.Error("settings lack the durable queues' description")
	}
	var table strings.Builder
	if err := printTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"mpq (Receive+Ack)", "mpq durable (sync/Put)", "durable: a named queue"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
}

// TestVariants checks, without running anything, which rows the variants
// take and that ratios compare them with plain mpq alone.
func TestVariants(t *testing.T) {
	byID := map[string]contender{}
	for _, c := range contenders("python3", "baseline.py") {
		byID[c.id] = c
	}
	for _, c := range []struct {
		id   string
		want string
	}{
		{"mpq", "1to1-64 1to1-1k 1to1-64k 4to4-64 rtt-64 allocs idle"},
		{"mpq-batch", "1to1-64 1to1-1k 1to1-64k 4to4-64 allocs"},
		{"mpq-ack", "1to1-64 4to4-64"},
		{"mpq-durable-put", "1to1-64"},
		{"mpq-durable-10ms", "1to1-64"},
		{"mpq-durable-never", "1to1-64"},
	} {
		var got []string
		for _, r := range rows {
			if byID[c.id].b.supports(r) {
				got = append(got, r.id)
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s supports %v; want %s", c.id, got, c.want)
		}
	}

	res := func(backend string, v float64) Result {
		return Result{Row: "1to1-64", Backend: backend, Metric: "msgs_per_sec", Value: v, Runs: []float64{v}}
	}
	rats := ratios([]Result{res("mpq", 10e6), res("mpq-batch", 40e6), res("mpq-ack", 4e6), res("mpq-durable-put", 5e3), res("socket", 1e6)})
	var got []string
	for _, r := range rats {
		got = append(got, fmt.Sprintf("%s=%g", r.Name, r.Value))
	}
	want := "mpq/mpq-ack=2.5 mpq/mpq-durable-put=2000 mpq/socket=10 mpq-batch/socket=40"
	if strings.Join(got, " ") != want {
		t.Errorf("got ratios %v; want %s", got, want)
	}

	if _, err := os.Stat("/dev/shm"); err == nil && fsType("/dev/shm") == "tmpfs" {
		if err := onDisk("/dev/shm"); err == nil {
			t.Error("onDisk(/dev/shm) = nil; want an error for tmpfs")
		}
	}
}

// TestStats checks the median and percentile helpers.
func TestStats(t *testing.T) {
	for _, c := range []struct {
		v        []float64
		med, p99 float64
		spread   float64
	}{
		{[]float64{3, 1, 2}, 2, 3, 0.5},
		{[]float64{4, 1, 3, 2}, 2.5, 4, 0.6},
		{[]float64{5}, 5, 5, 0},
	} {
		if got := median(c.v); got != c.med {
			t.Errorf("median(%v) = %v; want %v", c.v, got, c.med)
		}
		if got := spread(c.v); got != c.spread {
			t.Errorf("spread(%v) = %v; want %v", c.v, got, c.spread)
		}
		if got := percentile(append([]float64(nil), c.v...), 99); got != c.p99 {
			t.Errorf("percentile(%v, 99) = %v; want %v", c.v, got, c.p99)
		}
	}
}

// TestHistogram checks the buckets of the round-trip histograms and their
// merging.
func TestHistogram(t *testing.T) {
	h := newHistogram()
	for _, c := range []struct {
		ns     float64
		bucket int
	}{
		{0, 0}, {5, 0}, {10, 0}, {12.5, 0}, {12.6, 1}, {99.9, 9}, {100, 10}, {1000, 20},
		{1999, 23}, {1e9 - 1, 79}, {1e9, 79}, {1e12, 79},
	} {
		if got := h.bucket(c.ns); got != c.bucket {
			t.Errorf("bucket(%v) = %d; want %d", c.ns, got, c.bucket)
		}
		if lo, hi := h.Bounds(c.bucket); c.ns >= histMinNS && c.ns < 1e9 && (c.ns < lo*(1-1e-12) || c.ns >= hi) {
			t.Errorf("Bounds(%d) = %v, %v; want them around %v", c.bucket, lo, hi, c.ns)
		}
		h.add(c.ns)
	}
	if h.Total() != 12 || h.Counts[0] != 4 || h.Counts[79] != 3 {
		t.Errorf("got counts %v; want 12 in all, 4 in the first bucket and 3 in the last", h.Counts)
	}
	o := newHistogram()
	o.add(1000)
	if err := h.merge(o); err != nil || h.Counts[20] != 2 || h.Total() != 13 {
		t.Errorf("merge: got %v, counts %v", err, h.Counts)
	}
	o.Counts = o.Counts[:10]
	if err := h.merge(o); err == nil {
		t.Error("merge of a histogram with other buckets succeeded")
	}

	r := Result{Samples: []Sample{{Msgs: 1, P50NS: 1000, Hist: newHistogram()}, {Msgs: 1, P50NS: 2000, Hist: newHistogram()}}}
	r.Samples[0].Hist.add(1000)
	r.Samples[1].Hist.add(2000)
	r.summarize(roundTrip)
	if r.Hist == nil || r.Hist.Total() != 2 || r.Median.Hist != nil || r.Error != "" {
		t.Errorf("summarize: got histogram %+v, median's %+v, error %q; want the 2 round trips merged", r.Hist, r.Median.Hist, r.Error)
	}
}

// runCounted runs cfg, whose Count is 2000, and checks that every result
// is a positive figure over 1 to 2000 messages: a run may stop at its time
// limit first (slow under -race). It returns the report and the results'
// ids, ROW/CONTENDER.
func runCounted(t *testing.T, cfg Config) (*Report, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.Row+"/"+r.Backend)
		if r.Error != "" || r.Value <= 0 || r.Median.Msgs <= 0 || r.Median.Msgs > int64(cfg.Count) {
			t.Errorf("%s/%s: got %s %v over %d msgs, error %q; want a positive figure over 1 to %d msgs", r.Row, r.Backend, r.Metric, r.Value, r.Median.Msgs, r.Error, cfg.Count)
		}
	}
	return rep, got
}

// TestPoolRows checks, without running anything, that the pool rows are
// run by the pool contenders alone, which run nothing else, and the
// limits of their runs.
func TestPoolRows(t *testing.T) {
	want := map[string]string{
		"mpq-pool":    "pool-map pool-submit",
		"py-pool":     "pool-map",
		"py-executor": "pool-map pool-submit",
	}
	for _, c := range contenders("python3", "baseline.py") {
		var got []string
		for _, r := range rows {
			if c.b.supports(r) && (r.pool() || want[c.id] != "") {
				got = append(got, r.id)
			}
		}
		if strings.Join(got, " ") != want[c.id] {
			t.Errorf("%s supports %v of the pool rows and the others; want %q", c.id, got, want[c.id])
		}
	}

	for _, c := range []struct {
		cfg              Config
		goTasks, pyTasks int
	}{
		{Config{}, 1_000_000, 1_000_000},
		{Config{Quick: true}, 100_000, 100_000},
		{Config{Quick: true, Count: 2000}, 2000, 2000},
	} {
		goB, pyB := c.cfg.budgets()
		if goB.pool.msgs != c.goTasks || pyB.pool.msgs != c.pyTasks || pyB.pool.time <= 0 {
			t.Errorf("%+v: got pool limits %+v (Go), %+v (Python); want %d tasks, %d and a time limit", c.cfg, goB.pool, pyB.pool, c.goTasks, c.pyTasks)
		}
	}
}

// TestPoolRun runs the pool rows with every pool contender, with a small
// count, and checks the results, their comparison and the pool targets.
func TestPoolRun(t *testing.T) {
	needPython(t)
	cfg := Config{Quick: true, Reps: 1, Count: 2000, Rows: []string{"pool-map", "pool-submit"}, Backends: poolIDs}
	rep, got := runCounted(t, cfg)
	want := []string{"pool-map/mpq-pool", "pool-map/py-pool", "pool-map/py-executor", "pool-submit/mpq-pool", "pool-submit/py-executor"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got results %v; want %v", got, want)
	}
	for _, r := range rep.Results {
		if r.Workers != 2 || r.Size != 0 || r.Producers != 0 {
			t.Errorf("%s/%s: got %d workers, size %d, %d producers; want 2 workers and no messages", r.Row, r.Backend, r.Workers, r.Size, r.Producers)
		}
		switch {
		case r.Row == "pool-map" && r.Backend != "py-executor" && r.Median.Msgs != int64(cfg.Count):
			t.Errorf("%s/%s: mapped %d tasks; want one Map of %d", r.Row, r.Backend, r.Median.Msgs, cfg.Count)
		case r.Row == "pool-submit" && (r.Kind != KindRoundTrip || r.Hist == nil || r.Hist.Total() != r.Median.Msgs):
			t.Errorf("%s/%s: kind %s, histogram %+v over %d round trips; want a round-trip histogram of them", r.Row, r.Backend, r.Kind, r.Hist, r.Median.Msgs)
		}
	}
	var names []string
	for _, r := range rep.Ratios {
		names = append(names, r.Row+":"+r.Name)
	}
	wantNames := []string{"pool-map:mpq-pool/py-pool", "pool-map:mpq-pool/py-executor", "pool-submit:mpq-pool/py-executor"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("got ratios %v; want %v", names, wantNames)
	}
	judged := 0
	for _, tg := range rep.Targets {
		if strings.HasPrefix(tg.Name, "pool ") {
			judged++
			if tg.Status == "N/A" || tg.By != "mpq-pool" {
				t.Errorf("target %q: got %q, status %s, by %q; want it judged on mpq-pool", tg.Name, tg.Got, tg.Status, tg.By)
			}
		}
	}
	if judged != 3 {
		t.Errorf("got %d pool targets; want 3", judged)
	}
	var table strings.Builder
	if err := printTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"pool Map x*x, 2 workers", "tasks/s (2.0k tasks)", "py ProcessPoolExecutor:", "pool/this"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
}

// needPython skips the test if there is no python3, or fails it under
// CI=true, where the baselines must run.
func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no python3 for the baselines")
		}
		t.Skip("no python3")
	}
}

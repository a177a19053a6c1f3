//go:build linux

package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq/cmd/mpq/internal/bench"
	"github.com/mpq-go/mpq/proc"
)

// TestMain lets the test binary serve as the harness's child processes,
// and as the workers of the pool rows' proc.Pool.
func TestMain(m *testing.M) {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	proc.Main()
	os.Exit(m.Run())
}

// TestRunProgress runs a throughput and a round-trip row with mpq and Go
// channels, and checks what progress is told and the round-trip
// histograms, in the report and in its JSON.
func TestRunProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	cfg := bench.Config{Quick: true, Reps: 2, Count: 2000, Rows: []string{"1to1-64", "rtt-64"}, Backends: []string{"mpq", "chan"}, JSONPath: path}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ps []bench.Progress
	rep, err := bench.Run(ctx, cfg, func(p bench.Progress) { ps = append(ps, p) })
	if err != nil {
		t.Fatal(err)
	}
	const total = 2 * 2 * 2 // rows, contenders, reps
	if len(ps) != total+1 {
		t.Fatalf("progress called %d times; want %d: %+v", len(ps), total+1, ps)
	}
	for i, p := range ps {
		if p.Done != i || p.Total != total {
			t.Errorf("progress %d: got %d of %d; want %d of %d", i, p.Done, p.Total, i, total)
		}
		if (p.Step == "") != (i == total) {
			t.Errorf("progress %d: got step %q", i, p.Step)
		}
	}
	if !strings.Contains(ps[0].Step, "1->1 64 B") {
		t.Errorf("first step %q does not name the row", ps[0].Step)
	}
	// No Python contender: the interpreter, seconds to start on a loaded
	// machine, must not run before the first measurement.
	if got := rep.Machine.Python; got != "not used" {
		t.Errorf("Machine.Python = %q without a Python contender; want %q", got, "not used")
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON bench.Report
	if err := json.Unmarshal(data, &fromJSON); err != nil {
		t.Fatal(err)
	}
	for _, r := range []bench.Report{*rep, fromJSON} {
		var got []string
		for _, res := range r.Results {
			got = append(got, res.Row+"/"+res.Backend+"/"+res.Kind)
			if res.Error != "" {
				t.Errorf("%s/%s: %s", res.Row, res.Backend, res.Error)
			}
			if res.Size != 64 || res.Producers != 1 || res.Consumers != 1 {
				t.Errorf("%s/%s: got size %d, %d->%d; want 64, 1->1", res.Row, res.Backend, res.Size, res.Producers, res.Consumers)
			}
			switch res.Kind {
			case bench.KindThroughput:
				if res.Hist != nil {
					t.Errorf("%s/%s: a throughput row has a histogram", res.Row, res.Backend)
				}
			case bench.KindRoundTrip:
				checkHist(t, res)
			}
		}
		want := []string{"1to1-64/mpq/throughput", "1to1-64/chan/throughput", "rtt-64/mpq/round_trip", "rtt-64/chan/round_trip"}
		if !slices.Equal(got, want) {
			t.Errorf("got results %v; want %v", got, want)
		}
	}
}

// checkHist checks that the histogram of a round-trip result counts every
// round trip of its samples, and that its p50 falls in a bucket with
// round trips.
func checkHist(t *testing.T, res bench.Result) {
	t.Helper()
	h := res.Hist
	if h == nil {
		t.Errorf("%s/%s: no histogram", res.Row, res.Backend)
		return
	}
	var msgs int64
	for _, s := range res.Samples {
		msgs += s.Msgs
	}
	if got := h.Total(); got != msgs || msgs == 0 {
		t.Errorf("%s/%s: histogram counts %d round trips; want %d", res.Row, res.Backend, got, msgs)
	}
	p50 := res.Samples[0].P50NS
	for i, n := range res.Samples[0].Hist.Counts {
		if lo, hi := h.Bounds(i); lo <= p50 && p50 < hi && n == 0 {
			t.Errorf("%s/%s: p50 %v ns falls in bucket %d [%v, %v), which is empty", res.Row, res.Backend, p50, i, lo, hi)
		}
	}
}

// TestRunPythonHistogram checks that the Python baselines report a
// histogram of their round trips.
func TestRunPythonHistogram(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	cfg := bench.Config{Quick: true, Reps: 1, Count: 500, Rows: []string{"rtt-64"}, Backends: []string{"py-pipe"}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := bench.Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("got %d results; want 1", len(rep.Results))
	}
	if v := rep.Machine.Python; v == "not used" || strings.HasPrefix(v, "unavailable") {
		t.Errorf("Machine.Python = %q; want the interpreter's version", v)
	}
	checkHist(t, rep.Results[0])
}

// TestRunUnknownID checks that unknown ids fail before anything runs, with
// the valid ids in the error.
func TestRunUnknownID(t *testing.T) {
	for _, cfg := range []bench.Config{
		{Rows: []string{"1to1-64", "nope"}},
		{Backends: []string{"nope"}},
	} {
		called := false
		rep, err := bench.Run(context.Background(), cfg, func(bench.Progress) { called = true })
		if err == nil || rep != nil || called {
			t.Errorf("Run(%+v) = %v, %v, progress called %v; want an error alone", cfg, rep, err, called)
			continue
		}
		if !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "1to1-64") && !strings.Contains(err.Error(), "py-queue") {
			t.Errorf("Run(%+v): error %q does not name the id and the valid ones", cfg, err)
		}
	}
	if ids := bench.RowIDs(); len(ids) == 0 || ids[0] != "1to1-64" {
		t.Errorf("RowIDs() = %v", ids)
	}
	if ids := bench.BackendIDs(); len(ids) == 0 || ids[0] != "mpq" {
		t.Errorf("BackendIDs() = %v", ids)
	}
}

// TestRunInterrupt cancels a run of the idle row, which lasts seconds,
// shortly after it starts: Run must stop its child and return ctx.Err().
func TestRunInterrupt(t *testing.T) {
	cfg := bench.Config{Reps: 3, Rows: []string{"idle"}, Backends: []string{"mpq"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	rep, err := bench.Run(ctx, cfg, func(p bench.Progress) {
		if p.Done == 0 {
			time.AfterFunc(300*time.Millisecond, cancel)
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got error %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second { // each repetition lasts 2 s
		t.Errorf("Run took %v after the cancel; want it to stop at once", d)
	}
	if rep == nil || len(rep.Results) != 1 || rep.Results[0].Error == "" {
		t.Errorf("got report %+v; want one result with an error", rep)
	}
}

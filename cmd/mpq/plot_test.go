package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq/cmd/mpq/internal/bench"
)

// plotReport is a report as a run of two throughput sizes and a round trip
// with three contenders would make.
func plotReport() *bench.Report {
	rep := &bench.Report{
		Time:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Machine:  bench.Machine{CPU: "Test CPU", NumCPU: 2, GOMAXPROCS: 2, Kernel: "Linux 6.1", Go: "go1.26", Python: "3.12.1"},
		Settings: bench.Settings{Quick: true, Reps: 3},
	}
	contenders := []struct {
		id, label string
		rate, rtt float64 // msgs/s at 64 B, round trip in ns
	}{
		{"mpq", "mpq", 10e6, 900},
		{"socket", "unix socket", 1e6, 3000},
		{"py-pipe", "py Pipe", 500e3, 8000},
	}
	for _, size := range []int{64, 64 << 10} {
		for _, c := range contenders {
			rep.Results = append(rep.Results, bench.Result{
				Row: "1to1", Case: "1->1", Backend: c.id, Label: c.label,
				Kind: bench.KindThroughput, Size: size, Producers: 1, Consumers: 1,
				Metric: "msgs_per_sec", Value: c.rate * 64 / float64(size) * 10,
			})
		}
	}
	for _, c := range contenders {
		h := &bench.Histogram{MinNS: 10, PerDecade: 10, Counts: make([]int64, 80)}
		for i := range h.Counts {
			if lo, hi := h.Bounds(i); lo <= c.rtt*4 && hi > c.rtt/2 {
				h.Counts[i] = int64(100 - i) // a spread, and a tail
			}
		}
		h.Counts[70]++ // an outlier past the axis
		rep.Results = append(rep.Results, bench.Result{
			Row: "rtt-64", Case: "round trip 64 B", Backend: c.id, Label: c.label,
			Kind: bench.KindRoundTrip, Size: 64, Producers: 1, Consumers: 1,
			Metric: "p50_ns", Value: c.rtt, Median: bench.Sample{P50NS: c.rtt}, Hist: h,
		})
	}
	// A failed contender is left out.
	rep.Results = append(rep.Results, bench.Result{Row: "rtt-64", Backend: "chan", Label: "Go chan", Kind: bench.KindRoundTrip, Error: "boom"})
	return rep
}

// plotPoolReport is plotReport with the pool rows: a Map by three
// contenders, a Submit+Wait by two.
func plotPoolReport() *bench.Report {
	rep := plotReport()
	for _, c := range []struct {
		id, label string
		rate, p50 float64 // tasks/s of Map, ns of Submit+Wait (0: not run)
	}{
		{"mpq-pool", "mpq proc.Pool", 12.5e6, 9000},
		{"py-pool", "py Pool.map", 4.25e6, 0},
		{"py-executor", "py ProcessPoolExecutor", 6.3e3, 250e3},
	} {
		rep.Results = append(rep.Results, bench.Result{
			Row: "pool-map", Case: "pool Map x*x, 2 workers", Backend: c.id, Label: c.label,
			Kind: bench.KindThroughput, Workers: 2, Metric: "msgs_per_sec", Value: c.rate,
		})
		if c.p50 == 0 {
			continue
		}
		h := &bench.Histogram{MinNS: 10, PerDecade: 10, Counts: make([]int64, 80)}
		for i := range h.Counts {
			if lo, hi := h.Bounds(i); lo <= c.p50*2 && hi > c.p50/2 {
				h.Counts[i] = 10
			}
		}
		rep.Results = append(rep.Results, bench.Result{
			Row: "pool-submit", Case: "pool Submit+Wait, 2 workers", Backend: c.id, Label: c.label,
			Kind: bench.KindRoundTrip, Workers: 2, Metric: "p50_ns", Value: c.p50, Median: bench.Sample{P50NS: c.p50}, Hist: h,
		})
	}
	return rep
}

func TestPlotPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.png")
	if err := writePlot(path, plotReport()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	const wantW, wantH = 1200, 550 // 12 by 5.5 inches at 100 dpi
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("got a %dx%d image; want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
	}
}

func TestPlotSVG(t *testing.T) {
	for _, c := range []struct {
		name string
		rep  *bench.Report
		want []string
		not  []string
	}{
		{"full", plotReport(), []string{"mpq", "unix socket", "py Pipe", "Test CPU", "Throughput", "Round trips of 64 B"}, []string{"Go chan"}},
		{"empty", &bench.Report{}, []string{"(no 1-&gt;1 throughput rows measured)", "(no round-trip histograms measured)"}, []string{"pool Map"}},
		{"pool", plotPoolReport(), []string{"mpq proc.Pool", "py Pool.map", "py ProcessPoolExecutor", "Round trips of 64 B and pool Submit+Wait",
			"pool Map x*x, 2 workers", "12.5M", "4.25M", "6.3k"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bench.svg")
			if err := writePlot(path, c.rep); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d := xml.NewDecoder(bytes.NewReader(data))
			root := ""
			for {
				tok, err := d.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("SVG does not parse as XML: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok && root == "" {
					root = se.Name.Local
				}
			}
			if root != "svg" {
				t.Errorf("root element %q; want svg", root)
			}
			for _, s := range c.want {
				if !strings.Contains(string(data), ">"+s) {
					t.Errorf("SVG lacks text %q", s)
				}
			}
			for _, s := range c.not {
				if strings.Contains(string(data), s) {
					t.Errorf("SVG has text %q", s)
				}
			}
		})
	}
}

func TestPlotFormat(t *testing.T) {
	for _, c := range []struct {
		path, want string
	}{
		{"a.png", "png"}, {"dir/b.SVG", "svg"}, {"c.gif", ""}, {"png", ""}, {"d.png.txt", ""},
	} {
		got, err := plotFormat(c.path)
		var ee *exitError
		if got != c.want || (c.want == "") != (errors.As(err, &ee) && ee.code == exitUsage) {
			t.Errorf("plotFormat(%q) = %q, %v; want %q", c.path, got, err, c.want)
		}
	}
}

package natsbench

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
)

// median returns the median of v, which it does not reorder.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// describeMachine says what the figures were measured on.
func describeMachine(serverVersion string) string {
	var parts []string
	parts = append(parts, cpuModel())
	parts = append(parts, fmt.Sprintf("%d cores, GOMAXPROCS %d", runtime.NumCPU(), runtime.GOMAXPROCS(0)))
	osName := runtime.GOOS + "/" + runtime.GOARCH
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		osName += " " + strings.TrimSpace(string(rel))
	}
	parts = append(parts, osName, runtime.Version())
	if serverVersion != "" {
		parts = append(parts, "nats-server "+serverVersion)
	}
	return strings.Join(parts, "; ")
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// Print writes the report as a plain aligned table.
func (r Report) Print(w io.Writer) error {
	c := r.Config
	if _, err := fmt.Fprintf(w, "natsq against raw nats.go (jetstream) on %s, %s\n", c.URL, r.Started.UTC().Format("2006-01-02 15:04:05 UTC")); err != nil {
		return err
	}
	fmt.Fprintf(w, "machine:  %s\n", r.Machine)
	fmt.Fprintf(w, "settings: %d-byte messages, %d per run (consume: rounded up to a multiple of %d); median of %d runs of each, interleaved, after a warm-up;\n",
		c.Size, c.Messages, fetchBatch, c.Runs)
	fmt.Fprintf(w, "          a fresh file-storage work-queue stream per run, with natsq's configuration\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := len("ROW")
	for _, row := range r.Rows {
		width = max(width, len(row.Name))
	}
	fmt.Fprintf(tw, "%-*s\tNATS.GO msg/s\tNATSQ msg/s\tOVERHEAD\tTARGET\tSTATUS\tNATS.GO RUNS\tNATSQ RUNS\t\n", width, "ROW")
	for _, row := range r.Rows {
		st := "PASS"
		if !row.Pass {
			st = "FAIL"
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%+.1f%%\t<= %.0f%%\t%s\t%s\t%s\t\n", width, row.Name, si(row.Baseline), si(row.Backend),
			100*row.Overhead, 100*row.Target, st, span(row.BaselineRuns), span(row.BackendRuns))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n  overhead: 1 - natsq/nats.go of the medians; negative means natsq was faster\n"+
		"  target:   issue 6 sets it for the first two rows (publish and consume); the others show more\n"+
		"  publish:  jetstream Publish (waits for the PubAck) vs Queue.Put; many producers share one connection\n"+
		"  consume:  Fetch(%d) + Ack of each, vs Queue.Get (Prefetch %d); timed until a Flush of the acks\n"+
		"  put+get:  Publish, then Next + Ack, vs Put then Get, %d times or for %v per run\n",
		fetchBatch, fetchBatch, max(c.Messages/roundTripDivisor, 1), roundTripLimit)
	return err
}

// span formats the range of runs.
func span(v []float64) string {
	if len(v) == 0 {
		return ""
	}
	return si(slices.Min(v)) + " .. " + si(slices.Max(v))
}

// si formats v with a k or M suffix.
func si(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

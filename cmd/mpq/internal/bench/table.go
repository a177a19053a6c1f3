package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// printTable writes rep as one text table: the machine and settings, a line
// per row and contender, a legend, then the targets.
func printTable(w io.Writer, rep *Report) error {
	m, s := rep.Machine, rep.Settings
	fmt.Fprintf(w, "mpq cross-process benchmark, %s\n", rep.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(w, "machine:  %s; nproc %d; GOMAXPROCS %d; %s; %s %s/%s; Python %s\n",
		m.CPU, m.NumCPU, m.GOMAXPROCS, m.Kernel, m.Go, m.GOOS, m.GOARCH, m.Python)
	fmt.Fprintf(w, "settings: median of %d runs (idle: up to 3); a Go run stops at %d msgs or %gs (round trips: %d or %gs); a Python run at %d msgs or %gs\n",
		s.Reps, s.Go.ThroughputMsgs, s.Go.ThroughputSeconds, s.Go.RoundTrips, s.Go.RoundTripSeconds, s.Python.ThroughputMsgs, s.Python.ThroughputSeconds)
	if poolRows(rep) {
		fmt.Fprintf(w, "          pool Map: one call over %d ints (ProcessPoolExecutor.map: rounds of 500 until %d or %gs); pool Submit+Wait: as round trips\n",
			s.Go.PoolMapTasks, s.Python.PoolMapTasks, s.Python.PoolMapSeconds)
	}
	fmt.Fprintf(w, "          %s\n", s.MpqConfig)
	if s.PipeConfig != "" {
		fmt.Fprintf(w, "          %s\n", s.PipeConfig)
	}
	if s.DurableConfig != "" {
		fmt.Fprintf(w, "          %s\n", s.DurableConfig)
	}
	fmt.Fprintf(w, "          %s\n\n", s.RatioNote)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tBACKEND\tRESULT (median)\tRANGE OF RUNS\tmpq/this\tmpq(batch)/this\tpipe/this\tpool/this\t")
	last := ""
	for _, r := range rep.Results {
		c := r.Case
		if c == last {
			c = ""
		}
		last = r.Case
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c, r.Label, describe(r), span(r),
			ratioCell(rep.Ratios, r, "mpq"), ratioCell(rep.Ratios, r, "mpq-batch"), ratioCell(rep.Ratios, r, "mpq-pipe"),
			ratioCell(rep.Ratios, r, "mpq-pool"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	width := 19 // the legend's names, to the widest label's
	for _, r := range rep.Results {
		width = max(width, len(r.Label)+1)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if !seen[r.Backend] {
			seen[r.Backend] = true
			fmt.Fprintf(w, "  %-*s %s\n", width, r.Label+":", s.Backends[r.Backend])
		}
	}
	fmt.Fprintf(w, "  %-*s %s\n", width, "sleeps/msg:", "mpq Stats.Waits (a Put or Get of any process sleeping in the kernel) per message")

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tWANT\tGOT\tSTATUS\t")
	for _, t := range rep.Targets {
		st := t.Status
		switch {
		case t.By != "" && t.Status == "PASS":
			st += " via " + t.By
		case t.By != "":
			st += " (best: " + t.By + ")"
		}
		got := t.Got
		if got == "" {
			got = "not measured"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", t.Name, t.Want, got, st)
	}
	return tw.Flush()
}

// describe formats a result's median for the table.
func describe(r Result) string {
	if r.Error != "" {
		e := r.Error
		if len(e) > 100 {
			e = e[:100] + "..."
		}
		return "ERROR: " + e
	}
	m := r.Median
	if r.Metric == "msgs_per_sec" && r.Workers > 0 {
		return fmt.Sprintf("%9s tasks/s (%s tasks)", si(m.MsgsPerSec), si(float64(m.Msgs)))
	}
	switch r.Metric {
	case "msgs_per_sec":
		return fmt.Sprintf("%9s msg/s %9.1f MB/s", si(m.MsgsPerSec), m.MBPerSec) + sleeps(m)
	case "p50_ns":
		return fmt.Sprintf("p50 %9s  p99 %9s", formatNS(m.P50NS), formatNS(m.P99NS)) + sleeps(m)
	case "allocs_per_msg":
		return fmt.Sprintf("%.3g allocs/msg", r.Value)
	}
	return fmt.Sprintf("%.3f%% of a core (%.3f%% inside Get)", r.Value, m.CPUInWaitPct)
}

// poolRows reports whether rep has a process pool's row.
func poolRows(rep *Report) bool {
	for _, r := range rep.Results {
		if r.Workers > 0 {
			return true
		}
	}
	return false
}

// sleeps formats how often mpq's callers slept per message, if they did.
func sleeps(m Sample) string {
	if m.SleepsPerMsg == 0 {
		return ""
	}
	return fmt.Sprintf("  %.2g sleeps/msg", m.SleepsPerMsg)
}

// span formats the range of a result's headline figure over its runs.
func span(r Result) string {
	if r.Error != "" || len(r.Samples) < 2 {
		return ""
	}
	return formatMetric(r.Metric, r.Min) + " .. " + formatMetric(r.Metric, r.Max)
}

// formatMetric formats a headline figure compactly.
func formatMetric(metric string, v float64) string {
	switch metric {
	case "msgs_per_sec":
		return si(v)
	case "p50_ns":
		return formatNS(v)
	case "cpu_percent":
		return fmt.Sprintf("%.2f%%", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// ratioCell is the ratio of the mpq contender over the baseline r, if any.
func ratioCell(rats []Ratio, r Result, mpqID string) string {
	for _, x := range rats {
		if x.Row == r.Row && x.Baseline == r.Backend && x.Mpq == mpqID {
			return formatRatio(x.Value)
		}
	}
	return ""
}

// formatRatio formats a ratio with two significant digits or more.
func formatRatio(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0fx", v)
	}
	return fmt.Sprintf("%.2gx", v)
}

// si formats v with a k, M or G suffix.
func si(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// formatNS formats nanoseconds in a readable unit.
func formatNS(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return strings.TrimSpace(fmt.Sprintf("%.0f ns", ns))
}

//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// report is everything one harness run found; it is what the JSON file holds.
type report struct {
	Time     time.Time `json:"time"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`
	Results  []result  `json:"results"`
	Ratios   []ratio   `json:"ratios"`
	Targets  []target  `json:"targets"`
}

// settings record how the figures were taken.
type settings struct {
	Quick     bool              `json:"quick"`
	Reps      int               `json:"reps"`
	Go        budgetJSON        `json:"go_limits"`
	Python    budgetJSON        `json:"python_limits"`
	Rows      []string          `json:"rows"`
	Backends  map[string]string `json:"backends"` // id: how it moves a message
	MpqConfig string            `json:"mpq_config"`
	// PipeConfig describes the Pipes, if a Pipe contender ran.
	PipeConfig string `json:"pipe_config,omitempty"`
	// DurableConfig describes the durable queues, if a durable contender ran.
	DurableConfig string `json:"durable_config,omitempty"`
	RatioNote     string `json:"ratio_note"`
}

// budgetJSON is a budget in JSON-friendly units.
type budgetJSON struct {
	ThroughputMsgs    int     `json:"throughput_msgs"`
	ThroughputSeconds float64 `json:"throughput_seconds"`
	RoundTrips        int     `json:"round_trips"`
	RoundTripSeconds  float64 `json:"round_trip_seconds"`
	Warmup            int     `json:"warmup_round_trips"`
}

func toJSON(b budget) budgetJSON {
	return budgetJSON{
		b.tput.msgs, b.tput.time.Seconds(),
		b.rtt.msgs, b.rtt.time.Seconds(), b.rtt.warmup,
	}
}

// result is the outcome of one row with one contender: the median of its
// repetitions, each of which is kept in Samples.
type result struct {
	Row     string `json:"row"`
	Case    string `json:"case"`
	Backend string `json:"backend"`
	Label   string `json:"label"`
	// Metric names the headline figure and Value is its median:
	// msgs_per_sec, p50_ns, allocs_per_msg or cpu_percent.
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	// Runs holds the headline figure of each repetition. Min and Max bound
	// them; Spread is their half-difference relative to the median.
	Runs    []float64 `json:"runs"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Spread  float64   `json:"spread"`
	Median  sample    `json:"median"` // median of each field separately
	Samples []sample  `json:"samples"`
	Error   string    `json:"error,omitempty"`
}

// summarize computes the medians of the samples.
func (r *result) summarize(k kind) {
	if len(r.Samples) == 0 {
		if r.Error == "" {
			r.Error = "not measured"
		}
		return
	}
	field := func(get func(sample) float64) float64 {
		var v []float64
		for _, s := range r.Samples {
			v = append(v, get(s))
		}
		return median(v)
	}
	r.Median = sample{
		Msgs:         int64(field(func(s sample) float64 { return float64(s.Msgs) })),
		Seconds:      field(func(s sample) float64 { return s.Seconds }),
		MsgsPerSec:   field(func(s sample) float64 { return s.MsgsPerSec }),
		MBPerSec:     field(func(s sample) float64 { return s.MBPerSec }),
		P50NS:        field(func(s sample) float64 { return s.P50NS }),
		P99NS:        field(func(s sample) float64 { return s.P99NS }),
		SleepsPerMsg: field(func(s sample) float64 { return s.SleepsPerMsg }),
		AllocsPerMsg: field(func(s sample) float64 { return s.AllocsPerMsg }),
		CPUPercent:   field(func(s sample) float64 { return s.CPUPercent }),
		CPUInWaitPct: field(func(s sample) float64 { return s.CPUInWaitPct }),
	}
	r.Metric, r.Value = headline(k, r.Median)
	for _, s := range r.Samples {
		_, x := headline(k, s)
		r.Runs = append(r.Runs, x)
	}
	r.Min, r.Max, r.Spread = slices.Min(r.Runs), slices.Max(r.Runs), spread(r.Runs)
}

// headline returns the name and value of the figure that matters for k.
func headline(k kind, s sample) (string, float64) {
	switch k {
	case throughput:
		return "msgs_per_sec", s.MsgsPerSec
	case roundTrip:
		return "p50_ns", s.P50NS
	case allocs:
		return "allocs_per_msg", s.AllocsPerMsg
	}
	return "cpu_percent", s.CPUPercent
}

// ratio compares an mpq contender with a baseline on one row: how many
// times better mpq is. For throughput that is mpq's rate over the
// baseline's; for round trips the baseline's p50 over mpq's.
type ratio struct {
	Row      string    `json:"row"`
	Name     string    `json:"name"` // "mpq/socket", "mpq-batch/py-queue", ...
	Mpq      string    `json:"mpq"`
	Baseline string    `json:"baseline"`
	Value    float64   `json:"value"` // from the medians
	Runs     []float64 `json:"runs"`  // from the runs taken side by side
}

const ratioNote = "ratio > 1 means mpq is better: throughput is mpq msgs/s over the baseline's; round trip is the baseline's p50 over mpq's. " +
	"On mpq's own variants (Receive+Ack, durable) mpq/this is plain mpq's msgs/s over the variant's: what the feature costs"

// better returns how many times better figure m is than figure b of metric:
// m/b for a rate, b/m for a latency.
func better(metric string, m, b float64) float64 {
	if metric == "p50_ns" {
		return b / m
	}
	return m / b
}

// ratios compares every mpq result with every baseline result of its row,
// and plain mpq's with every variant's (see [variantIDs]).
func ratios(rs []result) []ratio {
	var out []ratio
	for _, m := range rs {
		if !slices.Contains(mpqIDs, m.Backend) || m.Error != "" || m.Value <= 0 {
			continue
		}
		for _, b := range rs {
			if b.Row != m.Row || slices.Contains(mpqIDs, b.Backend) || b.Error != "" || b.Value <= 0 {
				continue
			}
			if slices.Contains(variantIDs, b.Backend) && m.Backend != "mpq" {
				continue
			}
			if m.Metric != "msgs_per_sec" && m.Metric != "p50_ns" {
				continue
			}
			r := ratio{Row: m.Row, Name: m.Backend + "/" + b.Backend, Mpq: m.Backend, Baseline: b.Backend,
				Value: better(m.Metric, m.Value, b.Value)}
			// The contenders take turns within each repetition, so run i
			// of one was taken next to run i of the other.
			for i := range min(len(m.Runs), len(b.Runs)) {
				r.Runs = append(r.Runs, better(m.Metric, m.Runs[i], b.Runs[i]))
			}
			out = append(out, r)
		}
	}
	return out
}

// writeJSON writes rep to path atomically, creating its directory.
func writeJSON(path string, rep *report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

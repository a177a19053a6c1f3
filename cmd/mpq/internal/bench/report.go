package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// A Report is everything one harness run found; it is what the JSON file
// holds.
type Report struct {
	Time     time.Time `json:"time"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Results  []Result  `json:"results"`
	Ratios   []Ratio   `json:"ratios"`
	Targets  []Target  `json:"targets"`
}

// Machine describes where the figures were measured.
type Machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	// Python is the baselines' interpreter version, "not used" if no
	// Python contender was selected, or "unavailable: " and why.
	Python string `json:"python"`
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
}

// Settings record how the figures were taken.
type Settings struct {
	Quick     bool              `json:"quick"`
	Reps      int               `json:"reps"`
	Go        Budget            `json:"go_limits"`
	Python    Budget            `json:"python_limits"`
	Rows      []string          `json:"rows"`
	Backends  map[string]string `json:"backends"` // id: how it moves a message
	MpqConfig string            `json:"mpq_config"`
	// PipeConfig describes the Pipes, if a Pipe contender ran.
	PipeConfig string `json:"pipe_config,omitempty"`
	// DurableConfig describes the durable queues, if a durable contender ran.
	DurableConfig string `json:"durable_config,omitempty"`
	RatioNote     string `json:"ratio_note"`
}

// A Budget is the limits of the runs of one language's contenders, in
// JSON-friendly units: a run stops at whichever limit comes first.
type Budget struct {
	ThroughputMsgs    int     `json:"throughput_msgs"`
	ThroughputSeconds float64 `json:"throughput_seconds"`
	RoundTrips        int     `json:"round_trips"`
	RoundTripSeconds  float64 `json:"round_trip_seconds"`
	Warmup            int     `json:"warmup_round_trips"`
	// PoolMapTasks are the tasks of one pool-map run; a contender that
	// moves each task alone (ProcessPoolExecutor.map) also stops after
	// PoolMapSeconds, if that is not 0.
	PoolMapTasks   int     `json:"pool_map_tasks"`
	PoolMapSeconds float64 `json:"pool_map_seconds,omitempty"`
}

// A Result is the outcome of one row with one contender: the median of its
// repetitions, each of which is kept in Samples.
type Result struct {
	Row     string `json:"row"`     // the row's id, as -rows takes it
	Case    string `json:"case"`    // the row's title in the table
	Backend string `json:"backend"` // the contender's id, as -backends takes it
	Label   string `json:"label"`   // the contender's name in the table
	// Kind is what the row measures: KindThroughput, KindRoundTrip,
	// KindAllocs or KindIdleCPU. Size is its message size in bytes, and
	// Producers and Consumers the processes (or goroutines) on each side
	// of a throughput row. Workers, if not 0, makes it a process pool's
	// row, with that many worker processes: on a throughput row the
	// messages are tasks mapped, on a round-trip row a round trip is a
	// task submitted and its result awaited.
	Kind      string `json:"kind"`
	Size      int    `json:"size,omitempty"`
	Producers int    `json:"producers,omitempty"`
	Consumers int    `json:"consumers,omitempty"`
	Workers   int    `json:"workers,omitempty"`
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
	Median  Sample    `json:"median"` // median of each field separately
	Samples []Sample  `json:"samples"`
	// Hist, on a round-trip row, counts the round trips of every
	// repetition by duration.
	Hist  *Histogram `json:"hist,omitempty"`
	Error string     `json:"error,omitempty"`
}

// summarize computes the medians of the samples and merges their
// histograms.
func (r *Result) summarize(k kind) {
	if len(r.Samples) == 0 {
		if r.Error == "" {
			r.Error = "not measured"
		}
		return
	}
	for _, s := range r.Samples {
		if s.Hist == nil {
			continue
		}
		if r.Hist == nil {
			r.Hist = newHistogram()
		}
		if err := r.Hist.merge(s.Hist); err != nil && r.Error == "" {
			r.Error = err.Error()
		}
	}
	field := func(get func(Sample) float64) float64 {
		var v []float64
		for _, s := range r.Samples {
			v = append(v, get(s))
		}
		return median(v)
	}
	r.Median = Sample{
		Msgs:         int64(field(func(s Sample) float64 { return float64(s.Msgs) })),
		Seconds:      field(func(s Sample) float64 { return s.Seconds }),
		MsgsPerSec:   field(func(s Sample) float64 { return s.MsgsPerSec }),
		MBPerSec:     field(func(s Sample) float64 { return s.MBPerSec }),
		P50NS:        field(func(s Sample) float64 { return s.P50NS }),
		P99NS:        field(func(s Sample) float64 { return s.P99NS }),
		SleepsPerMsg: field(func(s Sample) float64 { return s.SleepsPerMsg }),
		AllocsPerMsg: field(func(s Sample) float64 { return s.AllocsPerMsg }),
		CPUPercent:   field(func(s Sample) float64 { return s.CPUPercent }),
		CPUInWaitPct: field(func(s Sample) float64 { return s.CPUInWaitPct }),
	}
	r.Metric, r.Value = headline(k, r.Median)
	for _, s := range r.Samples {
		_, x := headline(k, s)
		r.Runs = append(r.Runs, x)
	}
	r.Min, r.Max, r.Spread = slices.Min(r.Runs), slices.Max(r.Runs), spread(r.Runs)
}

// headline returns the name and value of the figure that matters for k.
func headline(k kind, s Sample) (string, float64) {
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

// A Ratio compares an mpq contender with a baseline on one row: how many
// times better mpq is. For throughput that is mpq's rate over the
// baseline's; for round trips the baseline's p50 over mpq's.
type Ratio struct {
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
func ratios(rs []Result) []Ratio {
	var out []Ratio
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
			r := Ratio{Row: m.Row, Name: m.Backend + "/" + b.Backend, Mpq: m.Backend, Baseline: b.Backend,
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
func writeJSON(path string, rep *Report) error {
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

package bench

import (
	"fmt"
	"strings"
)

// A goal is one of the targets.
type goal struct {
	name string
	row  string
	// baseline, if set, makes the goal a ratio against that contender
	// (see [Ratio]); otherwise it is about mpq's own headline figure.
	baseline string
	limit    float64
	atMost   bool // the figure must be <= limit (else >= limit)
	strict   bool // ... and not equal to it
	unit     string
	// of lists the contenders the goal judges; nil means [queueIDs].
	of []string
}

// pipeIDs are the contenders the Pipe goals judge: the Pipe as users call
// it, with Recv (mpq-pipe-append is shown, not judged).
var pipeIDs = []string{"mpq-pipe"}

// mpqPoolIDs are the contenders the pool goals judge.
var mpqPoolIDs = []string{"mpq-pool"}

// goals are the targets of the issue.
var goals = []goal{
	{name: "1->1 64 B vs python Queue", row: "1to1-64", baseline: "py-queue", limit: 100, unit: "x"},
	{name: "1->1 64 B vs unix socket", row: "1to1-64", baseline: "socket", limit: 40, unit: "x"},
	{name: "round trip 64 B p50", row: "rtt-64", limit: 2000, atMost: true, unit: "ns"},
	{name: "1->1 64 KiB MB/s vs python Pipe", row: "1to1-64k", baseline: "py-pipe", limit: 2, unit: "x"},
	{name: "allocs per message", row: "allocs", limit: 0, atMost: true, unit: "allocs"},
	{name: "blocked consumer CPU", row: "idle", limit: 1, atMost: true, strict: true, unit: "% of a core"},
	{name: "Pipe 1->1 64 B vs python Pipe", row: "1to1-64", baseline: "py-pipe", limit: 20, unit: "x", of: pipeIDs},
	{name: "Pipe round trip 64 B p50", row: "rtt-64", limit: 5000, atMost: true, unit: "ns", of: pipeIDs},
	{name: "pool Map vs python Pool.map", row: "pool-map", baseline: "py-pool", limit: 2, unit: "x", of: mpqPoolIDs},
	{name: "pool Map vs python ProcessPoolExecutor.map", row: "pool-map", baseline: "py-executor", limit: 100, unit: "x", of: mpqPoolIDs},
	// p50 at most 1/20 of the executor's: the executor's p50 over mpq's.
	{name: "pool Submit+Wait p50 vs python executor submit", row: "pool-submit", baseline: "py-executor", limit: 20, unit: "x", of: mpqPoolIDs},
}

// contenders returns the ids of the contenders g judges.
func (g goal) contenders() []string {
	if g.of != nil {
		return g.of
	}
	return queueIDs
}

// A Target is one of the goals checked against the figures of
// one run.
type Target struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Got    string `json:"got"`    // the median figure of each contender judged, and how many runs met the goal
	Status string `json:"status"` // PASS, MISS or N/A (not measured)
	// A ratio goal passes if the better contender judged, named in By,
	// meets it; any other goal only if every one measured meets it.
	By string `json:"by,omitempty"`
}

// ok reports whether v meets g.
func (g goal) ok(v float64) bool {
	switch {
	case g.atMost && g.strict:
		return v < g.limit
	case g.atMost:
		return v <= g.limit
	}
	return v >= g.limit
}

func (g goal) want() string {
	op := ">="
	if g.atMost {
		op = "<="
		if g.strict {
			op = "<"
		}
	}
	if g.baseline != "" {
		return fmt.Sprintf("%s %gx", op, g.limit)
	}
	return fmt.Sprintf("%s %g %s", op, g.limit, g.unit)
}

// check evaluates every goal.
func check(rs []Result, rats []Ratio) []Target {
	var out []Target
	for _, g := range goals {
		t := Target{Name: g.name, Want: g.want(), Status: "N/A"}
		var got []string
		var best float64
		bestID, all := "", true
		for _, id := range g.contenders() {
			v, runs, ok := g.figure(id, rs, rats)
			if !ok {
				continue
			}
			meet := 0
			for _, x := range runs {
				if g.ok(x) {
					meet++
				}
			}
			got = append(got, fmt.Sprintf("%s %s (%d/%d runs)", id, g.format(v), meet, len(runs)))
			if bestID == "" || v > best {
				best, bestID = v, id
			}
			all = all && g.ok(v)
		}
		t.Got = strings.Join(got, ", ")
		switch {
		case bestID == "":
		case g.baseline != "":
			t.By, t.Status = bestID, status(g.ok(best))
		default:
			t.Status = status(all)
		}
		out = append(out, t)
	}
	return out
}

func status(pass bool) string {
	if pass {
		return "PASS"
	}
	return "MISS"
}

// figure returns the value the goal judges for mpq contender id, from the
// medians and from each run, if it was measured.
func (g goal) figure(id string, rs []Result, rats []Ratio) (float64, []float64, bool) {
	if g.baseline != "" {
		for _, r := range rats {
			if r.Row == g.row && r.Mpq == id && r.Baseline == g.baseline {
				return r.Value, r.Runs, true
			}
		}
		return 0, nil, false
	}
	for _, r := range rs {
		if r.Row == g.row && r.Backend == id && r.Error == "" {
			return r.Value, r.Runs, true
		}
	}
	return 0, nil, false
}

func (g goal) format(v float64) string {
	switch g.unit {
	case "x":
		return formatRatio(v)
	case "ns":
		return formatNS(v)
	case "allocs":
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.3g%s", v, g.unit)
}

//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// config is what the flags ask for.
type config struct {
	quick    bool
	reps     int      // repetitions of each measurement
	count    int      // if > 0, overrides every message limit
	rows     []string // row ids; empty means all
	backends []string // contender ids; empty means all
	jsonPath string
	python   string
}

// budget is the limits of one contender's runs.
type budget struct {
	tput limits
	rtt  limits
}

// budgets returns the limits of Go and of Python runs. Python runs are
// longer, since Python is slower, but stay bounded per the issue (200k
// messages or 1 s).
func (c config) budgets() (goB, pyB budget) {
	goB = budget{limits{msgs: 20_000_000, time: 500 * time.Millisecond}, limits{msgs: 200_000, time: 500 * time.Millisecond, warmup: 2000}}
	pyB = budget{limits{msgs: 200_000, time: time.Second}, limits{msgs: 200_000, time: time.Second, warmup: 1000}}
	if c.quick {
		goB = budget{limits{msgs: 20_000_000, time: 100 * time.Millisecond}, limits{msgs: 200_000, time: 100 * time.Millisecond, warmup: 500}}
		pyB = budget{limits{msgs: 20_000, time: 200 * time.Millisecond}, limits{msgs: 20_000, time: 200 * time.Millisecond, warmup: 200}}
	}
	if c.count > 0 {
		for _, b := range []*budget{&goB, &pyB} {
			b.tput.msgs, b.rtt.msgs = c.count, c.count
			b.rtt.warmup = min(b.rtt.warmup, c.count)
		}
	}
	return goB, pyB
}

// selected returns the entries of all whose id is in want (all if want is
// empty), in the order of all, and an error naming unknown ids.
func selected[T any](what string, all []T, id func(T) string, want []string) ([]T, error) {
	var out []T
	known := map[string]bool{}
	for _, x := range all {
		known[id(x)] = true
		if len(want) == 0 || slices.Contains(want, id(x)) {
			out = append(out, x)
		}
	}
	for _, w := range want {
		if !known[w] {
			var ids []string
			for _, x := range all {
				ids = append(ids, id(x))
			}
			return nil, fmt.Errorf("unknown %s %q (have %s)", what, w, strings.Join(ids, ", "))
		}
	}
	return out, nil
}

// measureAll takes every selected row with every selected contender that
// supports it, cfg.reps times, interleaving the contenders within each
// repetition so that a noisy moment hits them alike. progress, if not nil,
// is told about each run.
func measureAll(ctx context.Context, cfg config, rs []row, cs []contender, progress func(string)) []result {
	goB, pyB := cfg.budgets()
	var out []result
	for _, r := range rs {
		type entry struct {
			c   contender
			res *result
		}
		var es []entry
		for _, c := range cs {
			if c.b.supports(r) {
				es = append(es, entry{c, &result{Row: r.id, Case: r.title, Backend: c.id, Label: c.label}})
			}
		}
		reps := cfg.reps
		if r.kind == idleCPU {
			reps = min(reps, 3) // each takes 2 s
		}
		for rep := 0; rep < reps && ctx.Err() == nil; rep++ {
			for _, e := range es {
				if e.res.Error != "" {
					continue // a backend that failed once is not retried
				}
				b := goB
				if e.c.python {
					b = pyB
				}
				lim := b.tput
				if r.kind == roundTrip {
					lim = b.rtt
				}
				if progress != nil {
					progress(fmt.Sprintf("%s, %s: run %d of %d", r.title, e.c.label, rep+1, reps))
				}
				s, err := e.c.b.measure(ctx, r, lim)
				if err != nil {
					e.res.Error = err.Error()
					continue
				}
				e.res.Samples = append(e.res.Samples, s)
			}
		}
		for _, e := range es {
			e.res.summarize(r.kind)
			out = append(out, *e.res)
		}
	}
	return out
}

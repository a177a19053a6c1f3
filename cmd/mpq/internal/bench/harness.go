//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// runBudget is the limits of one contender's runs.
type runBudget struct {
	tput limits
	rtt  limits
	pool limits // pool-map: the tasks of one Map; pool-submit takes rtt's
}

// budgets returns the limits of Go and of Python runs. Python runs are
// longer, since Python is slower, but stay bounded per the issue (200k
// messages or 1 s). A pool Map is one call over a million ints (100,000
// if quick) in Go and in Python's Pool.map alike, whatever it takes; the
// ProcessPoolExecutor, which moves each task alone, maps as many of them
// as the Python time limit allows.
func (c Config) budgets() (goB, pyB runBudget) {
	poolTasks := 1_000_000
	goB = runBudget{limits{msgs: 20_000_000, time: 500 * time.Millisecond}, limits{msgs: 200_000, time: 500 * time.Millisecond, warmup: 2000},
		limits{msgs: poolTasks}}
	pyB = runBudget{limits{msgs: 200_000, time: time.Second}, limits{msgs: 200_000, time: time.Second, warmup: 1000},
		limits{msgs: poolTasks, time: time.Second}}
	if c.Quick {
		poolTasks = 100_000
		goB = runBudget{limits{msgs: 20_000_000, time: 100 * time.Millisecond}, limits{msgs: 200_000, time: 100 * time.Millisecond, warmup: 500},
			limits{msgs: poolTasks}}
		pyB = runBudget{limits{msgs: 20_000, time: 200 * time.Millisecond}, limits{msgs: 20_000, time: 200 * time.Millisecond, warmup: 200},
			limits{msgs: poolTasks, time: 200 * time.Millisecond}}
	}
	if c.Count > 0 {
		for _, b := range []*runBudget{&goB, &pyB} {
			b.tput.msgs, b.rtt.msgs, b.pool.msgs = c.Count, c.Count, c.Count
			b.rtt.warmup = min(b.rtt.warmup, c.Count)
		}
	}
	return goB, pyB
}

// toJSON returns b in the units of the report.
func toJSON(b runBudget) Budget {
	return Budget{
		b.tput.msgs, b.tput.time.Seconds(),
		b.rtt.msgs, b.rtt.time.Seconds(), b.rtt.warmup,
		b.pool.msgs, b.pool.time.Seconds(),
	}
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
// supports it, cfg.Reps times, interleaving the contenders within each
// repetition so that a noisy moment hits them alike. progress, if not nil,
// is told about each run (see [Run]).
func measureAll(ctx context.Context, cfg Config, rs []row, cs []contender, progress func(Progress)) []Result {
	goB, pyB := cfg.budgets()
	type entry struct {
		c   contender
		res *Result
	}
	type rowRuns struct {
		r    row
		reps int
		es   []entry
	}
	var todo []rowRuns
	p := Progress{}
	for _, r := range rs {
		rr := rowRuns{r: r, reps: cfg.Reps}
		if r.kind == idleCPU {
			rr.reps = min(rr.reps, 3) // each takes 2 s
		}
		for _, c := range cs {
			if c.b.supports(r) {
				rr.es = append(rr.es, entry{c, &Result{Row: r.id, Case: r.title, Backend: c.id, Label: c.label,
					Kind: r.kind.String(), Size: r.size, Producers: r.producers, Consumers: r.consumers, Workers: r.workers}})
			}
		}
		p.Total += rr.reps * len(rr.es)
		todo = append(todo, rr)
	}

	var out []Result
	for _, rr := range todo {
		r := rr.r
		for rep := 0; rep < rr.reps && ctx.Err() == nil; rep++ {
			for _, e := range rr.es {
				if e.res.Error != "" {
					p.Done++ // a backend that failed once is not retried
					continue
				}
				b := goB
				if e.c.python {
					b = pyB
				}
				lim := b.tput
				switch {
				case r.kind == roundTrip:
					lim = b.rtt
				case r.pool():
					lim = b.pool
				}
				if progress != nil {
					p.Step = fmt.Sprintf("%s, %s: run %d of %d", r.title, e.c.label, rep+1, rr.reps)
					progress(p)
				}
				s, err := e.c.b.measure(ctx, r, lim)
				p.Done++
				if err != nil {
					e.res.Error = err.Error()
					continue
				}
				e.res.Samples = append(e.res.Samples, s)
			}
		}
		for _, e := range rr.es {
			e.res.summarize(r.kind)
			out = append(out, *e.res)
		}
	}
	if progress != nil && ctx.Err() == nil {
		progress(Progress{Done: p.Done, Total: p.Total})
	}
	return out
}

// contenders returns every contender of [contenderTable], in table order,
// with its backend. script is the path of the Python baseline script and
// python the interpreter.
func contenders(python, script string) []contender {
	cs := slices.Clone(contenderTable)
	for i := range cs {
		c := &cs[i]
		switch {
		case c.id == "chan":
			c.b = chanBackend{}
		case c.id == "mpq-pool":
			c.b = mpqPoolBackend{}
		case slices.Contains(poolIDs, c.id):
			c.b = &pyPoolBackend{python: python, script: script, transport: strings.TrimPrefix(c.id, "py-"), rows: c.rows}
		case c.python:
			c.b = &pyBackend{python: python, script: script, transport: strings.TrimPrefix(c.id, "py-")}
		default:
			t, ok := transports[c.id]
			if !ok {
				panic("bench: no transport for contender " + c.id)
			}
			c.b = &procBackend{t: t, rows: c.rows}
		}
	}
	return cs
}

// run is [Run] with cfg's defaults filled in.
func run(ctx context.Context, cfg Config, progress func(Progress)) (*Report, error) {
	rs, err := selected("row", rows, func(r row) string { return r.id }, cfg.Rows)
	if err != nil {
		return nil, err
	}
	if _, err := selected("backend", contenderTable, func(c contender) string { return c.id }, cfg.Backends); err != nil {
		return nil, err
	}
	if cfg.Spin != 0 {
		restore := setenv(spinEnv, cfg.Spin.String())
		defer restore()
	}
	script, cleanup, err := writeScript()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cs, err := selected("backend", contenders(cfg.Python, script), func(c contender) string { return c.id }, cfg.Backends)
	if err != nil {
		return nil, err
	}

	goB, pyB := cfg.budgets()
	rep := &Report{
		Time:    time.Now(),
		Machine: describeMachine(),
		Settings: Settings{
			Quick: cfg.Quick, Reps: cfg.Reps, Go: toJSON(goB), Python: toJSON(pyB),
			Backends:  map[string]string{},
			MpqConfig: mpqConfig(),
			RatioNote: ratioNote,
		},
	}
	for _, r := range rs {
		rep.Settings.Rows = append(rep.Settings.Rows, r.id)
	}
	for _, c := range cs {
		if c.python && rep.Machine.Python == pythonNotUsed {
			rep.Machine.Python = describePython(ctx, cfg.Python, script)
		}
		rep.Settings.Backends[c.id] = c.note
		if p, ok := c.b.(*procBackend); ok && isOwned(p.t) {
			rep.Settings.PipeConfig = pipeConfig()
		}
		if p, ok := c.b.(*procBackend); ok && isDurable(p.t) {
			rep.Settings.DurableConfig = durableConfig()
		}
	}
	rep.Results = measureAll(ctx, cfg, rs, cs, progress)
	rep.Ratios = ratios(rep.Results)
	rep.Targets = check(rep.Results, rep.Ratios)

	var failed []string
	for _, r := range rep.Results {
		if r.Error != "" {
			failed = append(failed, r.Case+" / "+r.Label)
		}
	}
	if cfg.JSONPath != "" {
		if err := writeJSON(cfg.JSONPath, rep); err != nil {
			return rep, err
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%d measurements failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return rep, nil
}

// setenv sets the environment variable key to v and returns a function
// restoring what it was.
func setenv(key, v string) (restore func()) {
	old, had := os.LookupEnv(key)
	os.Setenv(key, v)
	return func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	}
}

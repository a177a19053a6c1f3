//go:build linux

package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
)

// poolIDs are the contenders of the process pool rows, which run no other
// row: mpq's proc.Pool and Python's two pools.
var poolIDs = []string{"mpq-pool", "py-pool", "py-executor"}

// pyPoolBackend runs baseline.py for one of Python's process pools,
// multiprocessing.Pool ("pool") or concurrent.futures.ProcessPoolExecutor
// ("executor"), once per measurement. If rows is set, it runs only those
// of the pool rows.
type pyPoolBackend struct {
	python, script, transport string
	rows                      []string
}

func (p *pyPoolBackend) supports(r row) bool {
	return r.pool() && (p.rows == nil || slices.Contains(p.rows, r.id))
}

func (p *pyPoolBackend) measure(ctx context.Context, r row, lim limits) (Sample, error) {
	args := []string{"--transport", p.transport, "--workers", strconv.Itoa(r.workers),
		"--count", strconv.Itoa(lim.msgs), "--seconds", strconv.FormatFloat(lim.time.Seconds(), 'f', -1, 64)}
	if r.kind == roundTrip {
		args = append([]string{"submit", "--warmup", strconv.Itoa(lim.warmup),
			"--hist", fmt.Sprintf("%d,%d,%d", histMinNS, histPerDecade, histBuckets)}, args...)
	} else {
		args = append([]string{"pool"}, args...)
	}
	var s Sample
	err := runPython(ctx, p.python, p.script, lim.time+childTimeout, &s, args...)
	if err == nil && s.Msgs <= 0 {
		err = fmt.Errorf("python %s: no tasks done", p.transport)
	}
	return s, err
}

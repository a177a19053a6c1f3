//go:build linux

package bench

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// idleFor is how long the idle child stays blocked in Get.
const idleFor = 2 * time.Second

// idle starts a consumer child blocked in Get on an empty queue, ends the
// stream after idleFor and reports the CPU the child used, as a percentage
// of one core over the time it was blocked: CPUPercent from the kernel's
// rusage of the whole child (start-up included), CPUInWaitPct from the
// child's own getrusage around the Get.
func (p *procBackend) idle(ctx context.Context) (Sample, error) {
	l, err := p.t.link(false)
	if err != nil {
		return Sample{}, err
	}
	defer l.close()
	g := newGroup(ctx, idleFor+childTimeout)
	defer g.stop()
	args, err := p.childArgs("idle", 0, limits{}, l.b)
	if err != nil {
		return Sample{}, err
	}
	c, err := g.spawn(l.b, args...)
	if err != nil {
		return Sample{}, err
	}
	mine, err := p.t.open(l.a)
	if err != nil {
		return Sample{}, err
	}
	defer mine.close()
	if err := g.startAll(); err != nil {
		return Sample{}, err
	}
	select {
	case <-time.After(idleFor):
	case <-ctx.Done():
		return Sample{}, ctx.Err()
	}
	if err := mine.out.closeWrite(); err != nil {
		return Sample{}, err
	}
	var res childResult
	if err := c.result(&res); err != nil {
		return Sample{}, err
	}
	if err := g.waitAll(); err != nil {
		return Sample{}, err
	}
	ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return Sample{}, fmt.Errorf("no rusage for the idle child")
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	wall := time.Duration(res.End - res.Start)
	if wall <= 0 {
		return Sample{}, fmt.Errorf("idle child reported a wait of %v", wall)
	}
	return Sample{
		Seconds:      wall.Seconds(),
		CPUPercent:   100 * total.Seconds() / wall.Seconds(),
		CPUInWaitPct: 100 * float64(res.CPUNS) / float64(wall.Nanoseconds()),
	}, nil
}

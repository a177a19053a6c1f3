//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// procBackend measures a [transport] between real processes: the harness
// re-executes itself as producer, consumer and echo children. If rows is
// set, the backend runs only those rows (of the ones it supports).
type procBackend struct {
	t    transport
	rows []string
}

// childTimeout is how long a run may take beyond its time limit before its
// children are killed.
const childTimeout = 60 * time.Second

func (p *procBackend) supports(r row) bool {
	if p.rows != nil && !slices.Contains(p.rows, r.id) || r.pool() {
		return false
	}
	_, durable := p.t.(durableTransport) // one way only
	m, isMpq := p.t.(mpqTransport)
	switch r.kind {
	case throughput:
		return !isOwned(p.t) || r.producers == 1 && r.consumers == 1
	case roundTrip:
		return !isBatch(p.t) && !m.ack && !durable // a batch of one is a single Put
	case allocs:
		return isMpq && !m.ack
	case idleCPU:
		return isMpq && !m.batch && !m.ack
	}
	return false
}

// isBatch reports whether t is mpq's batch path.
func isBatch(t transport) bool {
	m, ok := t.(mpqTransport)
	return ok && m.batch
}

func (p *procBackend) measure(ctx context.Context, r row, lim limits) (Sample, error) {
	switch r.kind {
	case throughput:
		return p.stream(ctx, r, lim)
	case roundTrip:
		return p.pingPong(ctx, r, lim)
	case allocs:
		return mpqAllocs(ctx, isBatch(p.t), r.size)
	case idleCPU:
		return p.idle(ctx)
	}
	return Sample{}, fmt.Errorf("row %s not supported", r.id)
}

// childArgs are the arguments of a child running role over p's transport
// with the given files.
func (p *procBackend) childArgs(role string, size int, lim limits, files []*os.File) ([]string, error) {
	name, err := transportName(p.t)
	if err != nil {
		return nil, err
	}
	return []string{role, name, strconv.Itoa(size), strconv.Itoa(lim.msgs), lim.time.String(), fileLayout(files)}, nil
}

// fileLayout describes files for a child: one letter per descriptor, f for
// a file and - for a nil entry (a descriptor the child finds closed).
func fileLayout(files []*os.File) string {
	b := make([]byte, len(files))
	for i, f := range files {
		b[i] = 'f'
		if f == nil {
			b[i] = '-'
		}
	}
	return string(b)
}

// stream runs r.producers producers sending to r.consumers consumers, each
// producer sending up to lim.msgs/r.producers messages for up to lim.time.
// Throughput is every message received over the time from the first
// producer's start to the last consumer's end. The harness ends the stream
// once the producers are done, or with an [ownedTransport] the producer
// does by closing its end.
func (p *procBackend) stream(ctx context.Context, r row, lim limits) (Sample, error) {
	l, err := p.t.link(false)
	if err != nil {
		return Sample{}, err
	}
	defer l.close()
	g := newGroup(ctx, lim.time+childTimeout)
	defer g.stop()

	per := lim
	per.msgs = max(1, lim.msgs/r.producers)
	consumers, err := p.spawnN(g, r.consumers, "consumer", r.size, per, l.b)
	if err != nil {
		return Sample{}, err
	}
	producers, err := p.spawnN(g, r.producers, "producer", r.size, per, l.a)
	if err != nil {
		return Sample{}, err
	}
	var mine *ends // to end the stream once the producers are done
	if isOwned(p.t) {
		if err := l.close(); err != nil { // the children have their copies
			return Sample{}, err
		}
	} else {
		if mine, err = p.t.open(l.a); err != nil {
			return Sample{}, err
		}
		defer mine.close()
	}
	if err := g.startAll(); err != nil {
		return Sample{}, err
	}

	// The consumers' results are read as they come, so that one failing
	// stops the run at once (its producers would wait for room until the
	// children time out) and is the failure reported: the first one.
	cr := readResults(g, consumers)
	defer cr.stop()
	var sent, got, bytes int64
	start, end := int64(0), int64(0)
	for i, c := range producers {
		var res childResult
		if err := c.result(&res); err != nil {
			cr.fail(err)
			cr.wg.Wait()
			return Sample{}, cr.err()
		}
		sent += res.Msgs
		if i == 0 || res.Start < start {
			start = res.Start
		}
	}
	if mine != nil {
		if err := mine.out.closeWrite(); err != nil {
			return Sample{}, err
		}
	}
	cr.wg.Wait()
	if err := cr.err(); err != nil {
		return Sample{}, err
	}
	for _, res := range cr.results {
		got += res.Msgs
		bytes += res.Bytes
		end = max(end, res.End)
	}
	if err := g.waitAll(); err != nil {
		return Sample{}, err
	}
	if got != sent || bytes != got*int64(r.size) {
		return Sample{}, fmt.Errorf("producers sent %d messages, consumers got %d of %d bytes in all; want %d bytes", sent, got, bytes, sent*int64(r.size))
	}
	s, err := rate(got, r.size, time.Duration(end-start))
	s.countSleeps(mine)
	return s, err
}

// spawnN starts n children of role in g, each handed files and moving
// size-byte messages within per.
func (p *procBackend) spawnN(g *group, n int, role string, size int, per limits, files []*os.File) ([]*child, error) {
	args, err := p.childArgs(role, size, per, files)
	if err != nil {
		return nil, err
	}
	var cs []*child
	for range n {
		c, err := g.spawn(files, args...)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// A resultReader reads the results of children as they come, one
// goroutine each, and keeps the first failure, which ends the group.
type resultReader struct {
	g       *group
	results []childResult
	wg      sync.WaitGroup

	mu     sync.Mutex
	failed error
}

// readResults starts reading the results of cs.
func readResults(g *group, cs []*child) *resultReader {
	rr := &resultReader{g: g, results: make([]childResult, len(cs))}
	for i, c := range cs {
		rr.wg.Go(func() {
			if err := c.result(&rr.results[i]); err != nil {
				rr.fail(err)
			}
		})
	}
	return rr
}

// fail records err, if it is the first failure, and ends the group.
func (rr *resultReader) fail(err error) {
	rr.mu.Lock()
	if rr.failed == nil {
		rr.failed = err
	}
	rr.mu.Unlock()
	rr.g.cancel()
}

// err returns the first failure.
func (rr *resultReader) err() error {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.failed
}

// stop ends the group (a no-op once every child has reported) and waits
// for the readers.
func (rr *resultReader) stop() {
	rr.g.cancel()
	rr.wg.Wait()
}

// countSleeps records the sleeps the ends, if any, counted per message moved.
func (s *Sample) countSleeps(e *ends) {
	if e == nil {
		return
	}
	if n, ok := e.sleeps(); ok && s.Msgs > 0 {
		s.SleepsPerMsg = float64(n) / float64(s.Msgs)
	}
}

// pingPong times round trips from the harness to an echo child and back.
func (p *procBackend) pingPong(ctx context.Context, r row, lim limits) (Sample, error) {
	l, err := p.t.link(true)
	if err != nil {
		return Sample{}, err
	}
	defer l.close()
	g := newGroup(ctx, lim.time+childTimeout)
	defer g.stop()
	if _, err := p.spawnN(g, 1, "echo", r.size, lim, l.b); err != nil {
		return Sample{}, err
	}
	mine, err := p.t.open(l.a)
	if err != nil {
		return Sample{}, err
	}
	defer mine.close()
	if isOwned(p.t) {
		// The child has its side and the harness its end: closing that
		// end must end the child's stream.
		if err := l.close(); err != nil {
			return Sample{}, err
		}
	}
	if err := g.startAll(); err != nil {
		return Sample{}, err
	}
	s, err := timeRoundTrips(g.ctx, mine.out, mine.in, r.size, lim)
	if err != nil {
		return Sample{}, err
	}
	s.countSleeps(mine) // the warm-up round trips count too
	if err := mine.out.closeWrite(); err != nil {
		return Sample{}, err
	}
	return s, g.waitAll()
}

// timeRoundTrips sends a message on out and waits for the reply on in,
// lim.warmup times untimed, then up to lim.msgs times or for lim.time.
func timeRoundTrips(ctx context.Context, out, in endpoint, size int, lim limits) (Sample, error) {
	msg := make([]byte, size)
	rtts := make([]time.Duration, 0, min(lim.msgs, 1<<20))
	var t0 time.Time
	for i := 0; i < lim.warmup+lim.msgs; i++ {
		if i == lim.warmup {
			t0 = time.Now()
		}
		start := time.Now()
		if err := out.put(ctx, msg, 1); err != nil {
			return Sample{}, err
		}
		if _, _, err := in.get(ctx); err != nil {
			return Sample{}, err
		}
		if i >= lim.warmup {
			rtts = append(rtts, time.Since(start))
			if len(rtts)%256 == 0 && time.Since(t0) > lim.time {
				break
			}
		}
	}
	return latency(rtts, time.Since(t0))
}

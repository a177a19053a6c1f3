package proc

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mpq-go/mpq"
)

// readyLocked records that worker pid, in slot, is ready.
func (p *Pool[In, Out]) readyLocked(slot, pid int) {
	if slot < 0 || slot >= len(p.workers) || p.workers[slot] == nil || p.workers[slot].p.pid != pid {
		return // exited since
	}
	if p.wasReady[slot] {
		return // a replacement: NewPool waits for one worker per slot
	}
	p.wasReady[slot] = true
	p.nready++
	if p.nready == len(p.workers) {
		p.readyDoneLocked()
	}
}

// readyDoneLocked ends NewPool's wait.
func (p *Pool[In, Out]) readyDoneLocked() {
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
}

// resultsLocked applies a report of results.
func (p *Pool[In, Out]) resultsLocked(h reportHead, body []byte) {
	k := p.chunks[h.chunk]
	if k == nil {
		return // its call ended, or another report covered it
	}
	if h.first < 0 || h.n < 0 || h.first+h.n > len(k.ins) {
		return // not from a worker of this pool: the chunk runs again when returned
	}
	outs, fails, err := decodeResults(p.task.outs, body, h.first, h.n)
	if err != nil {
		// The worker acknowledges the chunk after this report: fail
		// its tasks here, or nothing ever settles them.
		why := fmt.Errorf("%w: its result: %v", mpq.ErrDecode, err)
		outs, fails = make([]Out, h.n), make([]wireFail, h.n)
		for j := range fails {
			fails[j] = wireFail{Pos: uint32(h.first + j), Message: why.Error(), Is: matches(why)}
		}
	}
	pid := h.pid
	var failed map[int]wireFail
	if len(fails) > 0 {
		failed = make(map[int]wireFail, len(fails))
		for _, f := range fails {
			failed[int(f.Pos)] = f
		}
	}
	var again []int
	c := k.c
	for j := range h.n {
		pos := h.first + j
		if k.reported != nil && k.reported[pos] {
			continue
		}
		if k.reported == nil && (h.first != 0 || h.n != len(k.ins)) {
			k.reported = make([]bool, len(k.ins))
		}
		if k.reported != nil {
			k.reported[pos] = true
		}
		k.nrep++
		i := k.index(pos)
		if c.ended || c.settled[i] {
			continue
		}
		if f, ok := failed[pos]; ok {
			if !p.failLocked(c, i, failAttempt(pid, f)) {
				again = append(again, pos)
			}
			continue
		}
		p.settleLocked(c, i, outs[j], nil)
	}
	if k.nrep >= len(k.ins) {
		p.dropLocked(k)
	}
	if len(again) > 0 && !c.ended {
		p.againLocked(k, again)
	}
}

// returnedLocked handles a chunk delivered again because its holder died:
// its tasks without a result run again, once the death has been charged.
func (p *Pool[In, Out]) returnedLocked(id uint64) {
	k := p.chunks[id]
	if k == nil {
		return
	}
	for _, w := range p.workers {
		if w == nil {
			continue
		}
		if m, _ := p.board.slot(w.slot).read(); m.chunk == id {
			// Its holder's death is yet to be seen.
			w.returns = append(w.returns, id)
			return
		}
	}
	p.rerunLocked(k)
}

// rerunLocked puts again the tasks of k that have no result: the one its
// holder's death was charged to on its own, the others in one chunk.
func (p *Pool[In, Out]) rerunLocked(k *chunk[In, Out]) {
	p.dropLocked(k)
	c := k.c
	if c.ended {
		return
	}
	var rest []int
	for pos := range k.ins {
		if k.reported != nil && k.reported[pos] || c.settled[k.index(pos)] {
			continue
		}
		if pos == k.suspect {
			p.againLocked(k, []int{pos})
			continue
		}
		rest = append(rest, pos)
	}
	if len(rest) > 0 {
		p.againLocked(k, rest)
	}
}

// againLocked queues a new chunk of positions pos of k, for the
// resubmitter to put.
func (p *Pool[In, Out]) againLocked(k *chunk[In, Out], pos []int) {
	n := &chunk[In, Out]{c: k.c, ins: make([]In, len(pos)), idx: make([]int, len(pos)), suspect: -1}
	for j, q := range pos {
		n.ins[j] = k.ins[q]
		n.idx[j] = k.index(q)
	}
	p.addLocked(n)
	p.pending = append(p.pending, n)
	select {
	case p.resubmit <- struct{}{}:
	default:
	}
}

// addLocked gives k an ID and enters it in the table.
func (p *Pool[In, Out]) addLocked(k *chunk[In, Out]) {
	p.nextID++
	k.id = p.nextID
	p.chunks[k.id] = k
	k.c.chunks[k.id] = true
}

// dropLocked removes k from the table; the last chunk of an ended call
// takes the call off the board's set of abandoned calls.
func (p *Pool[In, Out]) dropLocked(k *chunk[In, Out]) {
	delete(p.chunks, k.id)
	delete(k.c.chunks, k.id)
	if c := k.c; c.onBoard && len(c.chunks) == 0 {
		c.onBoard = false
		p.board.forget(c.id)
	}
}

// failLocked records a failed attempt of task i of c, and reports whether
// the task failed for good.
func (p *Pool[In, Out]) failLocked(c *call[In, Out], i int, a Attempt) bool {
	if c.fails == nil {
		c.fails = map[int][]Attempt{}
	}
	c.fails[i] = append(c.fails[i], a)
	if len(c.fails[i]) < p.o.MaxAttempts {
		p.stats.Retried++
		return false
	}
	p.stats.Failed++
	var zero Out
	p.settleLocked(c, i, zero, &TaskError{Task: p.task.name, Index: i, Attempts: c.fails[i]})
	return true
}

// settleLocked records the outcome of task i of c: its result, or the
// error that failed it for good.
func (p *Pool[In, Out]) settleLocked(c *call[In, Out], i int, out Out, err error) {
	if c.ended || c.settled[i] {
		return
	}
	c.settled[i] = true
	c.open--
	p.stats.InFlight--
	if err == nil {
		p.stats.Done++
	}
	if c.stream != nil {
		c.stream <- streamItem[Out]{out, err} // room for every task in flight
		return
	}
	if err != nil {
		p.endLocked(c, err)
		return
	}
	c.outs[i] = out
	if c.open == 0 { // every task of a Map or Submit is settled
		p.endLocked(c, nil)
	}
}

// endLocked ends call c with err (nil: every task is done): its chunks
// still in flight are abandoned. They stay in the table, their call on the
// board's set of abandoned calls, until each comes back (skipped by a
// worker, or run, or returned), so that no worker runs one that waits in
// the tasks queue.
func (p *Pool[In, Out]) endLocked(c *call[In, Out], err error) {
	if c.ended {
		return
	}
	c.ended = true
	c.err = err
	if len(c.chunks) > 0 {
		c.onBoard = p.board.abandon(c.id)
	}
	if c.onBoard && sigAbandoned != 0 {
		// Workers running its tasks cancel their ctx.
		for _, w := range p.workers {
			if w == nil {
				continue
			}
			m, _ := p.board.slot(w.slot).read()
			if k := p.chunks[m.chunk]; k != nil && k.c == c && m.phase == phaseRunning {
				w.p.Signal(sigAbandoned)
			}
		}
	}
	p.stats.InFlight -= c.open
	c.open = 0
	delete(p.calls, c.id)
	if c.stopWait != nil {
		c.stopWait()
	}
	close(c.done)
	if c.interrupt != nil {
		c.interrupt()
	}
	if len(p.calls) == 0 {
		p.idle.Broadcast()
	}
}

// failAllLocked ends every call with err.
func (p *Pool[In, Out]) failAllLocked(err error) {
	for _, c := range p.calls {
		p.endLocked(c, err)
	}
}

// supervise handles workers' deaths and TaskTimeout until every worker
// has exited after Close or Terminate.
func (p *Pool[In, Out]) supervise() {
	defer p.loops.Done()
	var tick <-chan time.Time
	if p.o.TaskTimeout > 0 {
		t := time.NewTicker(min(max(p.o.TaskTimeout/8, time.Millisecond), 100*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	for {
		select {
		case w := <-p.deaths:
			p.mu.Lock()
			if w != nil {
				p.diedLocked(w)
			}
			if len(p.restarts) > 0 && retry == nil {
				retry = time.After(100 * time.Millisecond)
			}
			done := p.alive == 0 && p.state >= poolSealed && len(p.restarts) == 0
			p.mu.Unlock()
			if done {
				close(p.gone)
				return
			}
		case <-retry:
			retry = nil
			p.mu.Lock()
			p.restartLocked()
			if len(p.restarts) > 0 {
				retry = time.After(100 * time.Millisecond)
			}
			p.mu.Unlock()
		case <-tick:
			p.mu.Lock()
			p.timeoutsLocked()
			p.mu.Unlock()
		}
	}
}

// timeoutsLocked kills the workers whose task ran past TaskTimeout.
func (p *Pool[In, Out]) timeoutsLocked() {
	now := monotonic()
	for _, w := range p.workers {
		if w == nil || w.timedOut != nil {
			continue
		}
		m, ok := p.board.slot(w.slot).read()
		if ok && m.phase == phaseRunning && m.started != 0 && time.Duration(now-m.started) > p.o.TaskTimeout {
			w.timedOut = &m
			w.p.Kill()
		}
	}
}

// diedLocked handles the exit of worker w: it charges the task it was
// running, reruns the chunks given back meanwhile, and replaces it.
func (p *Pool[In, Out]) diedLocked(w *poolWorker) {
	p.workers[w.slot] = nil
	p.alive--
	err := w.p.Wait()
	s := p.board.slot(w.slot)
	m, _ := s.read()
	ready := atomic.LoadUint32(s.ready) == 1
	switch {
	case w.timedOut != nil:
		p.chargeLocked(w.timedOut.chunk, int(w.timedOut.pos),
			Attempt{Pid: w.p.pid, Timeout: p.o.TaskTimeout})
	case m.phase == phaseRunning:
		// Even an exit with status 0: a task called os.Exit(0).
		p.chargeLocked(m.chunk, int(m.pos), deathAttempt(w.p.pid, err))
	}
	for _, id := range w.returns {
		if k := p.chunks[id]; k != nil {
			p.rerunLocked(k)
		}
	}
	if p.state == poolTerminated {
		return
	}
	var e *ExitError
	if !ready && err != nil && !(errors.As(err, &e) && e.Signal != 0) {
		// Init failed, or the worker could not start: not by chance.
		p.broken = fmt.Errorf("%w: %v", ErrInitFailed, err)
		p.failAllLocked(p.broken)
		p.readyDoneLocked()
		go p.Terminate()
		return
	}
	if err == nil && p.state >= poolSealed {
		return // drained: not replaced
	}
	p.stats.Replaced++
	p.restarts = append(p.restarts, w.slot)
	p.restartLocked()
}

// restartLocked starts workers in the slots waiting for one; those that
// fail to start wait for the next try.
func (p *Pool[In, Out]) restartLocked() {
	var still []int
	for _, s := range p.restarts {
		if p.state == poolTerminated {
			break
		}
		if err := p.startLocked(s); err != nil {
			still = append(still, s)
		}
	}
	p.restarts = still
}

// chargeLocked charges a failed attempt to the task at position pos of
// chunk id, which its worker's death or timeout ended.
func (p *Pool[In, Out]) chargeLocked(id uint64, pos int, a Attempt) {
	k := p.chunks[id]
	if k == nil || pos < 0 || pos >= len(k.ins) || k.reported != nil && k.reported[pos] {
		return
	}
	k.suspect = pos
	i := k.index(pos)
	if !k.c.ended && !k.c.settled[i] {
		p.failLocked(k.c, i, a)
	}
}

// resubmitter puts the chunks queued by againLocked.
func (p *Pool[In, Out]) resubmitter() {
	defer p.loops.Done()
	for {
		select {
		case <-p.resubmit:
		case <-p.gone:
			return
		}
		for {
			p.mu.Lock()
			if len(p.pending) == 0 || p.state == poolTerminated {
				p.pending = nil
				p.mu.Unlock()
				break
			}
			k := p.pending[0]
			p.pending = p.pending[1:]
			ended := k.c.ended
			if ended {
				p.dropLocked(k)
			}
			p.mu.Unlock()
			if !ended {
				p.send(p.life, k)
			}
		}
	}
}

package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/mpq-go/mpq"
)

// newCall registers a call of n tasks (Stream: 0, added as they come).
func (p *Pool[In, Out]) newCall(n int, stream bool) (*call[In, Out], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return nil, p.broken
	}
	if p.state != poolOpen {
		return nil, ErrPoolClosed
	}
	p.nextID++
	c := &call[In, Out]{id: p.nextID, settled: make([]bool, n), open: n,
		done: make(chan struct{}), chunks: map[uint64]bool{}}
	if !stream {
		c.outs = make([]Out, n)
	}
	p.stats.InFlight += n
	p.calls[c.id] = c
	return c, nil
}

// abandon ends c with err unless it has ended.
func (p *Pool[In, Out]) abandon(c *call[In, Out], err error) {
	p.mu.Lock()
	p.endLocked(c, err)
	p.mu.Unlock()
}

// chunkOf enters a chunk of tasks base.. of c, inputs ins, in the table.
func (p *Pool[In, Out]) chunkOf(c *call[In, Out], ins []In, base int) (*chunk[In, Out], bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.ended {
		return nil, false
	}
	k := &chunk[In, Out]{c: c, ins: ins, base: base, suspect: -1}
	p.addLocked(k)
	return k, true
}

// send puts chunk k, which is in the table, into the tasks queue, waiting
// while the queue is full, splitting it if its message is too large. A task
// that cannot be sent on its own fails for good.
func (p *Pool[In, Out]) send(ctx context.Context, k *chunk[In, Out]) error {
	var buf bytes.Buffer
	buf.Write(make([]byte, chunkHeader))
	err := p.task.ins.encode(&buf, k.ins)
	if err == nil && buf.Len() <= p.maxTask {
		msg := buf.Bytes()
		putChunkHead(msg, k.id, k.c.id, len(k.ins))
		if err := p.tasks.Put(ctx, msg); err != nil {
			p.mu.Lock()
			p.dropLocked(k)
			p.mu.Unlock()
			if errors.Is(err, mpq.ErrClosed) || p.life.Err() != nil {
				return ErrPoolClosed
			}
			return err
		}
		return nil
	}
	p.mu.Lock()
	p.dropLocked(k)
	if len(k.ins) == 1 {
		why := fmt.Errorf("%w: its input takes %d bytes, more than the pool's tasks queue takes (%d); raise PoolOptions.Capacity", mpq.ErrTooLarge, buf.Len()-chunkHeader, p.maxTask)
		if err != nil {
			why = fmt.Errorf("%w: its input: %v", mpq.ErrEncode, err)
		}
		if !k.c.ended {
			p.stats.Failed++
		}
		var zero Out
		p.settleLocked(k.c, k.index(0), zero, &TaskError{Task: p.task.name, Index: k.index(0), Err: why})
		p.mu.Unlock()
		return nil
	}
	if k.c.ended {
		p.mu.Unlock()
		return nil
	}
	half := len(k.ins) / 2
	var parts [2]*chunk[In, Out]
	for j, r := range [2][2]int{{0, half}, {half, len(k.ins)}} {
		n := &chunk[In, Out]{c: k.c, ins: k.ins[r[0]:r[1]], base: k.base + r[0], suspect: -1}
		if k.idx != nil {
			n.idx = k.idx[r[0]:r[1]]
		}
		p.addLocked(n)
		parts[j] = n
	}
	p.mu.Unlock()
	if err := p.send(ctx, parts[0]); err != nil {
		p.mu.Lock()
		p.dropLocked(parts[1])
		p.mu.Unlock()
		return err
	}
	return p.send(ctx, parts[1])
}

// putCtx returns a context that ends with ctx or with the pool.
func (p *Pool[In, Out]) putCtx(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// chunkSize is the number of tasks in a chunk of Map of n tasks: as
// Python's Pool.map, about a quarter of an even share for each worker (so
// that load stays balanced), at most maxChunk and MaxTasksPerWorker.
func (p *Pool[In, Out]) chunkSize(n int) int {
	size := max((n+4*p.o.Workers-1)/(4*p.o.Workers), 1)
	size = min(size, maxChunk)
	if p.o.MaxTasksPerWorker > 0 {
		size = min(size, p.o.MaxTasksPerWorker)
	}
	return size
}

// Map runs the task on every input and returns the results in input
// order, as Python's Pool.map does. The inputs travel in chunks (a chunk
// is the unit of delivery: about a quarter of an even share per worker, at
// most 4096 tasks), and Map waits while the tasks queue is full.
//
// The first task that fails for good (after MaxAttempts) makes Map return
// a [*TaskError] naming the task's index, its attempts and how each
// failed; the other tasks of the call are abandoned. If ctx ends first,
// Map returns ctx.Err() at once and the call's tasks are abandoned: those
// not yet taken by a worker are not run (unless more than 1024 abandoned
// calls have tasks waiting at once), and those running have their ctx
// cancelled (on Linux; elsewhere they run to their end) and their results
// dropped; no other call is affected. After Close or
// Terminate it returns [ErrPoolClosed].
func (p *Pool[In, Out]) Map(ctx context.Context, ins []In) ([]Out, error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := p.newCall(len(ins), false)
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		p.abandon(c, nil)
		return []Out{}, nil
	}
	stop := context.AfterFunc(ctx, func() { p.abandon(c, ctx.Err()) })
	defer stop()
	pctx, release := p.putCtx(ctx)
	defer release()
	size := p.chunkSize(len(ins))
	for lo := 0; lo < len(ins); lo += size {
		k, ok := p.chunkOf(c, ins[lo:min(lo+size, len(ins))], lo)
		if !ok {
			break // ended: a task failed, or ctx
		}
		if err := p.send(pctx, k); err != nil {
			p.abandon(c, err)
			break
		}
	}
	if err := p.wait(ctx, c); err != nil {
		p.abandon(c, err)
		<-c.done
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.outs, nil
}

// A Future is the pending result of [Pool.Submit].
type Future[Out any] struct {
	done <-chan struct{}
	out  *Out
	err  *error
	wait func(ctx context.Context) error
}

// Wait waits for the task and returns its result, or the [*TaskError] that
// failed it for good, the ctx error of Submit if that ended first, or
// [ErrPoolClosed] after Terminate. If ctx ends first, Wait returns
// ctx.Err() and the task goes on: Wait may be called again. Any number of
// goroutines may call Wait.
func (f *Future[Out]) Wait(ctx context.Context) (Out, error) {
	var zero Out
	if ctx == nil {
		return zero, mpq.ErrNilContext
	}
	select {
	case <-f.done: // known: whatever ctx says
	default:
		if err := f.wait(ctx); err != nil {
			return zero, err
		}
	}
	if *f.err != nil {
		return zero, *f.err
	}
	return *f.out, nil
}

// Done returns a channel that is closed when the result is known: Wait
// then returns at once.
func (f *Future[Out]) Done() <-chan struct{} { return f.done }

// Submit submits one task, as ProcessPoolExecutor.submit and
// Pool.apply_async do, and returns a Future for its result. It waits while
// the tasks queue is full. If ctx ends before the task is done, the task
// is abandoned (not run if no worker took it yet; its ctx cancelled and
// its result dropped if one did), and Wait returns ctx.Err().
//
// Submit returns an error at once for an input that cannot be encoded or
// is larger than the tasks queue takes (a [*TaskError]), after Close or
// Terminate ([ErrPoolClosed]), or when ctx ends while it waits.
func (p *Pool[In, Out]) Submit(ctx context.Context, in In) (*Future[Out], error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := p.newCall(1, false)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { p.abandon(c, ctx.Err()) })
	p.mu.Lock()
	c.stopWait = stop
	p.mu.Unlock()
	k, ok := p.chunkOf(c, []In{in}, 0)
	if ok {
		pctx, release := p.putCtx(ctx)
		err = p.send(pctx, k)
		release()
	}
	if err != nil {
		p.abandon(c, err)
		return nil, err
	}
	select {
	case <-c.done:
		var te *TaskError
		if errors.As(c.err, &te) && te.Err != nil {
			return nil, c.err
		}
	default:
	}
	return &Future[Out]{done: c.done, out: &c.outs[0], err: &c.err,
		wait: func(ctx context.Context) error { return p.wait(ctx, c) }}, nil
}

// Stream runs the task on each input of seq and yields the results as they
// complete, in no particular order, as Python's Pool.imap_unordered does:
// (result, nil) for each task done, (zero, *TaskError) for each that
// failed for good (its Index is its position in seq), and last, if the
// stream stopped early, (zero, err): ctx.Err(), or [ErrPoolClosed]. A
// failed task does not stop the stream.
//
// seq is read by another goroutine, at most 4 chunks of 256 inputs per
// worker ahead of the results taken: a long or endless seq is fine.
// Breaking out of the loop abandons the tasks in flight; Stream's loop
// returns only once the goroutine reading seq has stopped. A panic in seq
// abandons them too, and is raised again in the goroutine ranging over the
// Stream, with the value seq panicked with.
func (p *Pool[In, Out]) Stream(ctx context.Context, seq iter.Seq[In]) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		if ctx == nil {
			yield(zero, mpq.ErrNilContext)
			return
		}
		c, err := p.newCall(0, true)
		if err != nil {
			yield(zero, err)
			return
		}
		bound := streamAhead * streamChunk * p.o.Workers
		c.stream = make(chan streamItem[Out], bound)
		sctx, cancel := context.WithCancel(ctx)
		stopLife := context.AfterFunc(p.life, cancel)
		tokens := make(chan struct{}, bound)
		fed := make(chan int, 1) // the number of inputs, once seq ended or the feed stopped
		feedErr := make(chan error, 1)
		go p.feed(sctx, c, seq, tokens, fed, feedErr)
		fedOnce := fed
		defer func() {
			cancel()
			stopLife()
			p.abandon(c, ErrPoolClosed)
			for range fedOnce {
			}
		}()
		got, total := 0, -1
		for total < 0 || got < total {
			select {
			case it := <-c.stream:
				<-tokens
				got++
				if !yield(it.out, it.err) {
					return
				}
			case n, ok := <-fed:
				if !ok {
					fed = nil
					continue
				}
				total = n
				select {
				case err := <-feedErr:
					if sp, ok := err.(seqPanic); ok {
						panic(sp.v) // in the caller's goroutine, as any iterator's
					}
					total = -2 // stop after the error
					if p.life.Err() != nil {
						err = ErrPoolClosed
					}
					yield(zero, err)
					return
				default:
				}
			case <-sctx.Done():
				err := ctx.Err()
				if err == nil {
					err = ErrPoolClosed
				}
				yield(zero, err)
				return
			case <-c.done:
				// Ended by the pool: Terminate, or its results queue failed.
				err := c.err
				if err == nil {
					err = ErrPoolClosed
				}
				yield(zero, err)
				return
			}
		}
	}
}

// feed reads seq for Stream and puts its inputs in chunks of what is at
// hand, holding one token per task in flight. It sends the number of
// inputs on fed (and first an error on feedErr if it stopped early), then
// closes fed.
func (p *Pool[In, Out]) feed(ctx context.Context, c *call[In, Out], seq iter.Seq[In], tokens chan struct{}, fed chan<- int, feedErr chan<- error) {
	defer close(fed)
	items := make(chan In)
	read := make(chan struct{})
	var panicked *seqPanic
	go func() {
		defer close(read)
		defer close(items)
		defer func() {
			if r := recover(); r != nil {
				panicked = &seqPanic{r}
			}
		}()
		for in := range seq {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case items <- in:
			case <-ctx.Done():
				<-tokens
				return
			}
		}
	}()
	n := 0
	var stopErr error
	for in := range items {
		ins := []In{in}
	more:
		for len(ins) < streamChunk {
			select {
			case in, ok := <-items:
				if !ok {
					break more
				}
				ins = append(ins, in)
			default:
				break more
			}
		}
		p.mu.Lock()
		if c.ended {
			p.mu.Unlock()
			break
		}
		c.settled = append(c.settled, make([]bool, len(ins))...)
		c.open += len(ins)
		p.stats.InFlight += len(ins)
		k := &chunk[In, Out]{c: c, ins: ins, base: n, suspect: -1}
		p.addLocked(k)
		p.mu.Unlock()
		n += len(ins)
		if err := p.send(ctx, k); err != nil {
			stopErr = err
			break
		}
	}
	for range items {
	}
	<-read
	if stopErr == nil && ctx.Err() != nil {
		stopErr = ctx.Err()
	}
	if panicked != nil {
		stopErr = *panicked
	}
	if stopErr != nil {
		feedErr <- stopErr
	}
	fed <- n
}

// seqPanic carries a panic of Stream's seq to the goroutine ranging over
// the Stream.
type seqPanic struct{ v any }

func (e seqPanic) Error() string { return fmt.Sprint("proc: Stream's seq panicked: ", e.v) }

// Stats returns the pool's counters.
func (p *Pool[In, Out]) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Workers = p.alive
	return s
}

// Pids returns the process IDs of the workers alive now, in no particular
// order.
func (p *Pool[In, Out]) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, w := range p.workers {
		if w != nil {
			pids = append(pids, w.p.pid)
		}
	}
	return pids
}

// Close stops the pool taking tasks, waits for the calls in flight to
// finish (with their retries), then lets the workers drain the tasks queue
// and exit, and reaps them. A Stream in flight is a call in flight: it
// keeps taking inputs from its seq, and Close waits until its seq ends or
// its loop stops (for ever, for an endless seq nobody stops; Terminate
// ends it). After Close no worker process, zombie,
// descriptor, queue or goroutine of the pool is left. Calls made after
// Close began return [ErrPoolClosed]. Close is idempotent; it returns nil,
// or the error that broke the pool (ErrInitFailed).
func (p *Pool[In, Out]) Close() error {
	p.mu.Lock()
	if p.state == poolOpen {
		p.state = poolClosing
	}
	for len(p.calls) > 0 && p.state == poolClosing {
		p.idle.Wait()
	}
	seal := p.state == poolClosing
	if seal {
		p.state = poolSealed
	}
	p.mu.Unlock()
	if seal {
		p.tasks.Seal()
	}
	return p.finish()
}

// Terminate stops the pool at once, as Python's Pool.terminate: it kills
// every worker (SIGKILL), fails every call still waiting with
// [ErrPoolClosed], reaps the workers and frees what the pool holds.
// Terminate is idempotent, and may follow or interrupt Close.
func (p *Pool[In, Out]) Terminate() error {
	p.mu.Lock()
	if p.state != poolTerminated {
		p.state = poolTerminated
		p.kill()
		p.failAllLocked(ErrPoolClosed)
		p.restarts = nil
		for _, w := range p.workers {
			if w != nil {
				w.p.Kill()
			}
		}
		p.idle.Broadcast()
		if p.alive == 0 {
			select {
			case p.deaths <- nil:
			default:
			}
		}
	}
	p.mu.Unlock()
	return p.finish()
}

// finish waits for every worker to exit, then stops the pool's goroutines
// and frees its queues and board.
func (p *Pool[In, Out]) finish() error {
	<-p.gone
	p.loops.Wait()
	p.closeOnce.Do(func() {
		if p.stopCtx != nil {
			p.stopCtx()
		}
		p.kill()
		p.results.Seal()
		<-p.collected
		p.tasks.Close()
		p.results.Close()
		p.board.close()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.broken
}

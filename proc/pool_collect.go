package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mpq-go/mpq"
)

// The results queue is read by whoever holds the collector's token: a
// goroutine waiting for its own call's results (Map, Future.Wait), or,
// while nobody waits, a background goroutine. A waiter that reads its own
// result returns without waking anyone, which makes a Submit then Wait a
// round trip between two processes and not also a hand-off between two
// goroutines (on two CPUs, tens of microseconds). The background reader
// gives the token up as soon as a waiter comes.
type collector struct {
	tok     chan struct{} // holds the token while nobody reads
	mu      sync.Mutex
	waiters int
	bgStop  context.CancelFunc // interrupts the background reader; nil unless it reads
	idle    chan struct{}      // wakes the background reader when the last waiter leaves
}

// bgPause is how long the background reader leaves the results queue
// alone after the last waiter left.
const bgPause = time.Millisecond

func newCollector() *collector {
	c := &collector{tok: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
	c.tok <- struct{}{}
	return c
}

// background reads the results queue while no call waits, until the queue
// is sealed and drained (Close) or closed (Terminate).
func (p *Pool[In, Out]) background() {
	defer close(p.collected)
	col := p.col
	var buf []byte
	pause := time.NewTimer(time.Hour)
	defer pause.Stop()
	for {
		col.mu.Lock()
		for col.waiters > 0 {
			col.mu.Unlock()
			select {
			case <-col.idle:
			case <-p.life.Done():
			}
			// A caller that submits and waits in a loop comes back at
			// once: leave it the token.
			pause.Reset(bgPause)
			select {
			case <-pause.C:
			case <-p.life.Done():
			}
			col.mu.Lock()
		}
		col.mu.Unlock()
		<-col.tok
		col.mu.Lock()
		if col.waiters > 0 {
			col.mu.Unlock()
			col.tok <- struct{}{}
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		col.bgStop = cancel
		col.mu.Unlock()
		var err error
		for err == nil {
			if buf, err = p.results.AppendGet(ctx, buf[:0]); err == nil {
				p.handle(buf)
			}
		}
		col.mu.Lock()
		col.bgStop = nil
		col.mu.Unlock()
		cancel()
		col.tok <- struct{}{}
		if !errors.Is(err, context.Canceled) {
			p.readFailed(err)
			return
		}
	}
}

// readFailed handles the end of the results queue: EOF once the pool is
// closed and drained, ErrClosed once it is terminated, anything else a
// broken pool.
func (p *Pool[In, Out]) readFailed(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, mpq.ErrClosed) {
		return
	}
	p.mu.Lock()
	if p.state != poolTerminated {
		p.failAllLocked(fmt.Errorf("%w: results queue: %v", ErrPoolClosed, err))
	}
	p.mu.Unlock()
}

// handle applies one report.
func (p *Pool[In, Out]) handle(msg []byte) {
	h, err := readReportHead(msg)
	if err != nil {
		return
	}
	p.mu.Lock()
	switch h.kind {
	case reportReady:
		p.readyLocked(h.slot, h.pid)
	case reportResults:
		p.resultsLocked(h, msg[reportHeader:])
	case reportReturned:
		p.returnedLocked(h.chunk)
	case reportSkipped:
		if k := p.chunks[h.chunk]; k != nil {
			p.dropLocked(k)
		}
	}
	p.mu.Unlock()
}

// wait waits until call c has ended or ctx is done, reading the results
// queue itself whenever nobody else does.
func (p *Pool[In, Out]) wait(ctx context.Context, c *call[In, Out]) error {
	col := p.col
	col.mu.Lock()
	col.waiters++
	if col.bgStop != nil {
		col.bgStop()
	}
	col.mu.Unlock()
	defer func() {
		col.mu.Lock()
		if col.waiters--; col.waiters == 0 {
			select {
			case col.idle <- struct{}{}:
			default:
			}
		}
		col.mu.Unlock()
	}()
	for {
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-col.tok:
		}
		err := p.read(ctx, c)
		col.tok <- struct{}{}
		if err != nil {
			select {
			case <-c.done:
				return nil
			default:
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, mpq.ErrClosed) {
				<-c.done // Terminate ends every call
				return nil
			}
			p.readFailed(err)
			<-c.done
			return nil
		}
		return nil
	}
}

// read reads and applies reports until call c has ended, ctx is done, or
// the results queue fails.
func (p *Pool[In, Out]) read(ctx context.Context, c *call[In, Out]) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.mu.Lock()
	if c.ended {
		p.mu.Unlock()
		return nil
	}
	c.interrupt = cancel
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		c.interrupt = nil
		p.mu.Unlock()
	}()
	var buf []byte
	for {
		select {
		case <-c.done:
			return nil
		default:
		}
		msg, err := p.results.AppendGet(rctx, buf[:0])
		if err != nil {
			select {
			case <-c.done:
				return nil // interrupted because it ended
			default:
			}
			return err
		}
		buf = msg
		p.handle(msg)
	}
}

package mpq

import (
	"context"
	"sync/atomic"
)

// A gate is a mutex whose Lock gives up when a context is done.
type gate struct {
	held    atomic.Bool
	waiters atomic.Int32
	token   chan struct{} // a release, for a waiter to retry
}

func (g *gate) init() { g.token = make(chan struct{}, 1) }

func (g *gate) tryLock() bool { return g.held.CompareAndSwap(false, true) }

func (g *gate) lock(ctx context.Context) error {
	if g.held.CompareAndSwap(false, true) {
		return nil
	}
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	for !g.held.CompareAndSwap(false, true) {
		select {
		case <-g.token:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (g *gate) unlock() {
	g.held.Store(false)
	if g.waiters.Load() > 0 {
		select {
		case g.token <- struct{}{}:
		default:
		}
	}
}

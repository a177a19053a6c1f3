package mpq

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpq-go/mpq/internal/shm"
)

// A SyncPolicy says when the Puts of a durable queue reach the disk. See
// [Options].Sync. The zero value is SyncEveryPut.
type SyncPolicy time.Duration

const (
	// SyncEveryPut makes every Put return only once its message is on
	// disk. It is the default, and the slowest: one fdatasync per Put.
	SyncEveryPut SyncPolicy = 0
	// SyncNever leaves flushing to the operating system's write-back and
	// to explicit calls of Queue.Sync.
	SyncNever SyncPolicy = -1
)

// SyncEvery flushes the queue file in the background at most d after a
// Put: a crash loses at most the last d of Puts. d must be positive.
func SyncEvery(d time.Duration) SyncPolicy { return SyncPolicy(d) }

// String describes the policy.
func (p SyncPolicy) String() string {
	switch {
	case p == SyncNever:
		return "never"
	case p > 0:
		return fmt.Sprintf("every %v", time.Duration(p))
	}
	return "every put"
}

// Sync flushes the queue file to its storage device: every message Put
// returned before the call survives a crash of the machine. It matters for
// durable queues; on others (in memory) it is cheap and changes nothing.
func (q *Queue) Sync() error {
	if !q.enter() {
		return ErrClosed
	}
	defer q.leave()
	if err := shm.Sync(q.f); err != nil {
		return fmt.Errorf("mpq: sync queue %s: %w", q.name, err)
	}
	return nil
}

// afterPut applies the sync policy of a durable queue to a successful Put.
func (q *Queue) afterPut() error {
	if q.syncPut {
		return q.Sync()
	}
	if q.syncer != nil {
		q.syncer.dirty()
	}
	return nil
}

// A syncer flushes a durable queue's file in the background, at most every
// interval, when this handle has put since the last flush.
type syncer struct {
	q       *Queue
	every   time.Duration
	puts    atomic.Bool
	started atomic.Bool
	once    sync.Once
	quit    chan struct{}
	done    chan struct{}
}

func newSyncer(q *Queue, every time.Duration) *syncer {
	return &syncer{q: q, every: every, quit: make(chan struct{}), done: make(chan struct{})}
}

func (s *syncer) dirty() {
	s.puts.Store(true)
	if !s.started.Load() {
		s.once.Do(func() {
			s.started.Store(true)
			go s.run()
		})
	}
}

func (s *syncer) run() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			s.flush()
			return
		case <-t.C:
			s.flush()
		}
	}
}

func (s *syncer) flush() {
	if s.puts.Swap(false) {
		shm.Sync(s.q.f) // an error shows in the next explicit Sync
	}
}

// stop ends the background flushing after a last flush.
func (s *syncer) stop() {
	s.once.Do(func() {}) // no goroutine starts after this
	if s.started.Load() {
		close(s.quit)
		<-s.done
	}
}

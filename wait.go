package mpq

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpq-go/mpq/internal/futex"
	"github.com/mpq-go/mpq/internal/ring"
)

// sleepSlice bounds one sleep in the kernel, so that a waiter periodically
// re-checks the queue even if the process that should have woken it died
// between publishing and waking.
const sleepSlice = 50 * time.Millisecond

// heldSlice bounds one sleep while deliveries are held: a waiter is then
// also the one that finds a dead consumer or an ended lease and gives its
// messages back, and a held message may be what keeps producers blocked.
const heldSlice = 10 * time.Millisecond

// pollOnly is how long a waiter polls without yielding the processor: long
// enough for a peer on another CPU to answer a round trip.
const pollOnly = 1 * time.Microsecond

const (
	forData  = ring.ForData
	forSpace = ring.ForSpace
)

// again reports whether err means "would block".
func again(err error) bool {
	return err == ring.ErrFull || err == ring.ErrEmpty || err == ring.ErrBusy
}

// block retries attempt until it succeeds, fails for good, or ctx is done.
// attempt reports "would block" with an error for which again is true. It
// first spins for h.spin, polling ready, then sleeps on the futex word.
func (h *handle) block(ctx context.Context, space ring.Direction, ready func() bool, attempt func(done <-chan struct{}) error) (err error) {
	if !h.enter() {
		return ErrClosed
	}
	defer h.leave()
	// The polls and the futex words are reads of the mapping outside the
	// ring's methods: a fault in them is an error too.
	if h.r.MayFault() {
		defer h.r.Guard(&err, debug.SetPanicOnFault(true))
	}

	done := ctx.Done()
	if h.spin > 0 {
		start := time.Now()
		deadline, yielding := start.Add(h.spin), false
		for i := 0; ; i++ {
			if ready() {
				if err := attempt(done); !again(err) {
					return h.result(ctx, err)
				}
			}
			// After a few microseconds of polling, give the processor away
			// between polls: the process we wait for may need this CPU.
			if yielding && i%8 == 7 {
				h.lt.Yield()
			}
			if i%64 == 63 {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err := h.r.Faulted(); err != nil {
					return err
				}
				if h.r.Closed() {
					return ErrClosed
				}
				now := time.Now()
				if now.After(deadline) {
					break
				}
				yielding = now.Sub(start) > pollOnly
			}
		}
	}

	w := h.r.DataSeq()
	if space == forSpace {
		w = h.r.SpaceSeq()
	}
	h.setWaiting(space, 1)
	defer h.setWaiting(space, -1)
	if done != nil {
		stop := context.AfterFunc(ctx, func() { h.wakeLocal(space) })
		defer stop()
	}
	for {
		seq := atomic.LoadUint32(w)
		if err := attempt(done); !again(err) {
			return h.result(ctx, err)
		}
		// An attempt that only polls (Join, Poll) does not see a fault.
		if err := h.r.Faulted(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		h.r.AddWait()
		slice := sliceOf(sleepSlice)
		if h.r.Holding() {
			slice = sliceOf(heldSlice)
		}
		h.sleep(space, w, seq, slice, done)
	}
}

// sleepers are the goroutines of a handle asleep on the futex word of one
// direction. Only one of them, the leader, sleeps in the kernel; the others
// wait for it to come back, or for their own context or the handle's
// Close. Waking a handle's sleepers then takes one thread, not one per
// goroutine (on a loaded machine each woken thread waits for a processor,
// and the last of many waits long), and a waiter whose context ends
// returns without the kernel. A handle with a thousand goroutines in Get
// holds one thread asleep, not a thousand.
type sleepers struct {
	mu     sync.Mutex
	leader bool
	back   chan struct{} // closed when the leader comes back from the kernel
}

// sleep waits, as the leader or behind it, until the word at w may have
// moved on from seq (which it held when the caller last tried), slice has
// passed, or done or the handle's Close ends the wait.
func (h *handle) sleep(space ring.Direction, w *uint32, seq uint32, slice time.Duration, done <-chan struct{}) {
	s := &h.sleepers[0]
	if space == forSpace {
		s = &h.sleepers[1]
	}
	s.mu.Lock()
	if s.back == nil {
		s.back = make(chan struct{})
	}
	back := s.back
	if s.leader {
		s.mu.Unlock()
		// A change after this look wakes the leader, or keeps it from
		// sleeping: it closes back either way.
		if atomic.LoadUint32(w) != seq {
			return
		}
		select {
		case <-back:
		case <-done:
		case <-h.closed:
		}
		return
	}
	s.leader = true
	s.mu.Unlock()
	futex.Wait(w, seq, slice)
	s.mu.Lock()
	s.leader = false
	close(back)
	s.back = nil
	s.mu.Unlock()
}

func (h *handle) result(ctx context.Context, err error) error {
	if err == ring.ErrCanceled {
		return ctx.Err()
	}
	return err
}

// setWaiting counts this process's sleepers and keeps its bit in the
// queue's waiter mask set while there is one.
func (h *handle) setWaiting(space ring.Direction, d int) {
	i := 0
	if space == forSpace {
		i = 1
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.waiting[i] += d
	if h.unmapped {
		return
	}
	if d > 0 && h.waiting[i] == 1 {
		h.r.SetWaiting(space)
	} else if d < 0 && h.waiting[i] == 0 {
		h.r.ClearWaiting(space)
	}
}

// wakeLocal wakes the sleepers on the data (or space) futex word, so that
// ours notice a cancelled context or a closing handle. Other processes'
// sleepers on that word wake too and go back to sleep.
func (h *handle) wakeLocal(space ring.Direction) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.unmapped {
		return
	}
	defer h.r.Guard(nil, debug.SetPanicOnFault(true))
	w := h.r.DataSeq()
	if space == forSpace {
		w = h.r.SpaceSeq()
	}
	atomic.AddUint32(w, 1)
	futex.Wake(w, 1<<30)
}

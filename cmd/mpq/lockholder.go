package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mpq-go/mpq"
)

// A queueLock is one of the two locks of a queue.
type queueLock uint8

const (
	producerLock queueLock = iota // held inside Put (and Seal)
	consumerLock                  // held inside Get (and Receive, Ack)
)

func (l queueLock) String() string {
	if l == producerLock {
		return "producer lock"
	}
	return "consumer lock"
}

// A lockHolder is a live process that holds one of a queue's locks.
type lockHolder struct {
	pid   int
	state string // "T (stopped)", as /proc/PID/stat says; "" if unknown
	lock  queueLock
	stats mpq.Stats // the queue when it was seen

	hasRoom bool // blamePut: the queue had room for the message
}

// stopped reports whether the holder is stopped (SIGSTOP, a debugger):
// it lets go of the lock only once it runs again.
func (h *lockHolder) stopped() bool {
	return h.state != "" && (h.state[0] == 'T' || h.state[0] == 't')
}

// String says who holds the lock: "process 1234 (T (stopped)) holds the
// producer lock of queue jobs".
func (h *lockHolder) String() string {
	state := ""
	if h.state != "" {
		state = " (" + h.state + ")"
	}
	return fmt.Sprintf("process %d%s holds the %s", h.pid, state, h.lock)
}

// room is ", though the queue has room" if it had room for a put of a
// size-byte message when it was seen, else "".
func (h *lockHolder) room() string {
	if h.hasRoom {
		return ", though the queue has room"
	}
	return ""
}

// advice says what lets the lock go.
func (h *lockHolder) advice() string {
	if h.stopped() {
		return fmt.Sprintf("it lets go once it runs again (kill -CONT %d), or is taken over once it dies", h.pid)
	}
	return "it is taken over once that process dies"
}

// holder looks at the queue, without attaching to it, for a live process
// other than this one that holds lock; nil if there is none, or for a
// queue that is not in shared memory.
func (r *queueRef) holder(lock queueLock) *lockHolder {
	if r.scheme != "" && r.scheme != "shm" {
		return nil
	}
	s, err := mpq.Inspect(r.name, &mpq.Options{Dir: r.dir})
	if err != nil {
		return nil
	}
	for _, p := range s.Procs {
		held := p.PutLock
		if lock == consumerLock {
			held = p.GetLock
		}
		if held && p.PID != 0 && p.PID != os.Getpid() {
			return &lockHolder{pid: p.PID, state: procState(p.PID), lock: lock, stats: s}
		}
	}
	return nil
}

// blamePut returns the process whose lock kept a put of a size-byte
// message waiting, rather than a full queue, or nil: a holder that is
// stopped, or one holding the lock of a queue with room for the message.
func (r *queueRef) blamePut(size int) *lockHolder {
	h := r.holder(producerLock)
	if h == nil {
		return nil
	}
	// A record is the message and a header of up to 16 bytes, 8-aligned.
	need := (size + 16 + 7) &^ 7
	h.hasRoom = h.stats.Capacity-h.stats.Used >= need
	if h.stopped() || h.hasRoom {
		return h
	}
	return nil
}

// blameGet returns the process whose lock kept a get waiting, rather than
// an empty queue, or nil.
func (r *queueRef) blameGet() *lockHolder {
	h := r.holder(consumerLock)
	if h != nil && (h.stopped() || h.stats.Len > 0) {
		return h
	}
	return nil
}

// ended is the error for a command whose context ended (a signal, the
// root's --timeout) while it was doing what: "seal of queue jobs
// interrupted by SIGTERM: DETAIL", with the exit status that goes with
// the cause.
func ended(ctx context.Context, what, detail string) error {
	cause := context.Cause(ctx)
	code := 130
	var se *signalError
	var te *timeoutError
	switch {
	case errors.As(cause, &se):
		code = se.code()
	case errors.As(cause, &te), errors.Is(cause, context.DeadlineExceeded):
		code = exitTimeout
	}
	if detail != "" {
		return fail(code, "%s %v: %s", what, cause, detail)
	}
	return fail(code, "%s %v", what, cause)
}

// await runs call, which takes no context and may block for good (Seal,
// waiting for a lock held by a stopped process), and returns its error, or
// ctx's if ctx ends first; abandoned then reports true, and call goes on
// in the background: the caller must not close what call uses.
func await(ctx context.Context, call func() error) (abandoned bool, err error) {
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
		select {
		case err := <-done:
			return false, err
		default:
			return true, ctx.Err()
		}
	}
}

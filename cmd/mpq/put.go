package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// putFlags are the settings of one mpq put.
type putFlags struct {
	lines, seal bool
	files       []string
	timeout     time.Duration
}

func newPutCmd(e *env) *cobra.Command {
	var o putFlags
	c := &cobra.Command{
		Use:   "put NAME [MESSAGE...]",
		Short: "Put messages into a queue",
		Long: `Put puts each MESSAGE argument into the queue, in order. With no MESSAGE
it reads standard input: one message for all of it, or one per line with
--lines. With --file (no short form: -f is get's --follow), each file is one
message (- is standard input).

A full queue makes put wait for room, up to --timeout (default: as long as
it takes); running out of time exits with status 4.

` + urlHelp + `
A plain NAME must exist (mpq create); the queue of a URL is created if
need be, with the URL's parameters, as mpq.OpenURL does.`,
		Example: `  mpq put jobs 'resize photo 1' 'resize photo 2'
  seq 1000 | mpq put jobs --lines
  mpq put images --file a.png --file b.png
  mpq put jobs --seal last-job      # then consumers drain and stop
  mpq put nats://127.0.0.1:4222/jobs 'resize photo 3'
  mpq put 'shm:jobs?dir=/var/lib/app/queues' 'resize photo 4'`,
		Args: func(cmd *cobra.Command, args []string) error { return o.checkArgs(args) },
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), e, args) },
	}
	f := c.Flags()
	f.BoolVar(&o.lines, "lines", false, "read standard input as one message per line")
	f.StringArrayVar(&o.files, "file", nil, "put the contents of `FILE` as one message (repeatable; - is standard input)")
	f.DurationVar(&o.timeout, "timeout", 0, "how long to wait for room in a full queue, and with --seal for the seal (0: as long as it takes)")
	f.BoolVar(&o.seal, "seal", false, "seal the queue afterwards: consumers drain it, then stop")
	return c
}

// checkArgs checks that put has a queue and one source of messages.
func (o *putFlags) checkArgs(args []string) error {
	if len(args) < 1 {
		return usage("put: want a queue name")
	}
	if len(args) > 1 && (o.lines || len(o.files) > 0) {
		return usage("put: give MESSAGE arguments, --lines or --file, not several")
	}
	if o.lines && len(o.files) > 0 {
		return usage("put: --lines reads standard input; it cannot be used with --file")
	}
	return nil
}

// run opens the queue, feeds it the messages and seals it if asked.
func (o *putFlags) run(ctx context.Context, e *env, args []string) error {
	if o.timeout < 0 {
		return usage("put: --timeout %v: want a positive duration, or 0 for no limit", o.timeout)
	}
	r, err := e.ref(args[0])
	if err != nil {
		return err
	}
	q, err := r.openWithin(ctx, o.timeout, true, nil)
	if err != nil {
		return err
	}
	keep := false // a Seal left waiting for the lock still uses q
	defer func() {
		if !keep {
			q.Close()
		}
	}()
	p := &putter{ctx: ctx, r: r, q: q, timeout: o.timeout}
	// Reading standard input may block for as long as its writer likes:
	// feed in a goroutine, so that an interrupt ends put at once (what was
	// put stays put).
	fed := make(chan error, 1)
	go func() { fed <- e.feed(ctx, q, r, args[1:], o.files, o.lines, p.put) }()
	select {
	case err := <-fed:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		if p.putting.Load() {
			// Put returns at once, and says what it waited for.
			if err := <-fed; err != nil {
				return err
			}
		}
		return ended(ctx, fmt.Sprintf("put into %s", r), fmt.Sprintf("%d put", p.done.Load()))
	}
	if o.seal {
		keep, err = r.seal(ctx, q, o.timeout)
		return err
	}
	return nil
}

// A putter puts the messages of one mpq put, each within the timeout.
type putter struct {
	ctx     context.Context
	r       *queueRef
	q       mpq.MessageQueue
	timeout time.Duration
	done    atomic.Int64 // messages put
	putting atomic.Bool  // in q.Put, not reading the input
}

// put puts m, message i (from 0) of the input.
func (p *putter) put(i int, m []byte) error {
	p.putting.Store(true)
	defer p.putting.Store(false)
	if p.ctx.Err() != nil {
		return ended(p.ctx, fmt.Sprintf("put into %s", p.r), fmt.Sprintf("%d put", i)) // put nothing more
	}
	pctx, cancel := p.ctx, context.CancelFunc(func() {})
	if p.timeout > 0 {
		pctx, cancel = context.WithTimeout(p.ctx, p.timeout)
	}
	defer cancel()
	if err := p.q.Put(pctx, m); err != nil {
		return p.failed(i, m, err)
	}
	p.done.Add(1)
	return nil
}

// failed is the error of put i of m, which failed with err: who or what
// kept it waiting, or why the queue refused it.
func (p *putter) failed(i int, m []byte, err error) error {
	r, ctx := p.r, p.ctx
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		if h := r.blamePut(len(m)); h != nil {
			return fail(exitTimeout, "put into %s: message %d not put within %v (%d put)%s: %v; %s",
				r, i+1, p.timeout, i, h.room(), h, h.advice())
		}
		return fail(exitTimeout, "queue %s is full: no room for message %d within %v (%d put); take some out with: mpq get%s",
			r, i+1, p.timeout, i, r.cmdArg())
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		what := fmt.Sprintf("put into %s", r)
		if h := r.blamePut(len(m)); h != nil {
			return ended(ctx, what, fmt.Sprintf("%d put; message %d was waiting%s: %v; %s", i, i+1, h.room(), h, h.advice()))
		}
		return ended(ctx, what, fmt.Sprintf("%d put; message %d was waiting for room", i, i+1))
	case errors.Is(err, mpq.ErrTooLarge):
		return r.tooLarge(ctx, p.q, i, fmt.Sprintf("%d bytes", len(m)))
	case errors.Is(err, nats.ErrMaxPayload):
		return fail(exitFailure, "message %d (%d bytes) is larger than the NATS server at %s takes (its max_payload)", i+1, len(m), r.server)
	}
	return r.err(err)
}

// tooLarge is the error for message i, of size (in words: "40000 bytes"),
// that q does not take.
func (r *queueRef) tooLarge(ctx context.Context, q mpq.MessageQueue, i int, size string) error {
	return fail(exitFailure, "message %d (%s) is larger than queue %s takes (%d bytes); %s",
		i+1, size, r, r.maxMessage(ctx, q), r.largerHint())
}

func newSealCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "seal NAME",
		Short: "Seal a queue: no more puts; consumers drain it, then stop",
		Long: `Seal marks the queue complete: every later put fails, and consumers get
the messages still in it, then end of stream (io.EOF in Go, exit status 0
for get --follow). Sealing a sealed queue does nothing.

` + urlHelp,
		Example: `  mpq seal jobs
  mpq seal nats://127.0.0.1:4222/jobs`,
		Args: exactArgs(1, "a queue name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.ref(args[0])
			if err != nil {
				return err
			}
			q, err := r.open(cmd.Context(), false, nil)
			if err != nil {
				return err
			}
			keep, err := r.seal(cmd.Context(), q, 0)
			if !keep {
				q.Close()
			}
			return err
		},
	}
}

// seal seals q, waiting up to timeout (0: no limit) for its producer lock,
// or until ctx ends. Seal takes no context: if it is still waiting then,
// it is left to it, and keep reports that q must stay open.
func (r *queueRef) seal(ctx context.Context, q mpq.MessageQueue, timeout time.Duration) (keep bool, err error) {
	sctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	keep, err = await(sctx, q.Seal)
	if !keep {
		return false, r.err(err)
	}
	waiting := "it was waiting for the producer lock"
	if h := r.holder(producerLock); h != nil {
		waiting = fmt.Sprintf("it was waiting for the producer lock: %v; %s", h, h.advice())
	}
	if ctx.Err() == nil { // put --seal's own --timeout
		return true, fail(exitTimeout, "seal of queue %s not done within %v: %s", r, timeout, waiting)
	}
	return true, ended(ctx, fmt.Sprintf("seal of queue %s", r), waiting)
}

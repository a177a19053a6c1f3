package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/spf13/cobra"
)

// getFlags are the settings of one mpq get.
type getFlags struct {
	n                 int
	timeout           time.Duration
	follow, raw, null bool
}

func newGetCmd(e *env) *cobra.Command {
	var o getFlags
	c := &cobra.Command{
		Use:   "get NAME",
		Short: "Take messages out of a queue and print them",
		Long: `Get takes -n messages (default 1) out of the queue and prints each on its
own line (--raw: the bytes alone, --null: each followed by a NUL byte).
With --follow it goes on until the queue is sealed and drained, or it is
interrupted (SIGINT, SIGTERM: exit status 130, 143, saying how many it got).

An empty queue makes get wait, up to --timeout (default: as long as it
takes). Exit status 4: nothing arrived within --timeout; 5: the queue is
sealed and drained before -n messages (with --follow that is the normal
end, status 0).

` + urlHelp + `
Get does not create queues: one that does not exist is exit status 3. On
NATS, get fetches -n messages from the server at a time (one with
--follow), unless the URL sets prefetch=.

A message leaves the queue before it is written out: if writing fails, get
says how many taken messages were not written. With --follow, each
message is flushed before the next is taken, but a pipe still buffers
some (up to 64 KiB on Linux): a worker that stops reading early leaves
those taken. Programs that must not lose work use Receive and Ack.`,
		Example: `  mpq get jobs
  mpq get jobs -n 10 --timeout 5s
  mpq get jobs --follow | while read -r job; do echo "doing $job"; done
  mpq get images --raw > image.png
  mpq get nats://127.0.0.1:4222/jobs -n 10 --timeout 5s
  mpq get 'shm:jobs?dir=/var/lib/app/queues' --follow`,
		Args: exactArgs(1, "a queue name"),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), e, args[0]) },
	}
	f := c.Flags()
	f.IntVarP(&o.n, "count", "n", 1, "how many messages to take")
	f.DurationVar(&o.timeout, "timeout", 0, "how long to wait for each message (0: as long as it takes)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep taking messages until the queue is sealed and drained")
	f.BoolVar(&o.raw, "raw", false, "print the message bytes alone, nothing between messages")
	f.BoolVarP(&o.null, "null", "0", false, "end each message with a NUL byte instead of a newline")
	return c
}

// run checks the flags, opens the queue and takes the messages.
func (o *getFlags) run(ctx context.Context, e *env, arg string) error {
	if o.timeout < 0 {
		return usage("get: --timeout %v: want a positive duration, or 0 for no limit", o.timeout)
	}
	if o.n < 1 {
		return usage("get: -n %d: want at least 1", o.n)
	}
	if o.raw && o.null {
		return usage("get: choose --raw or --null, not both")
	}
	r, err := e.ref(arg)
	if err != nil {
		return err
	}
	// A NATS handle fetches messages ahead of its gets, and gives back
	// those it did not hand out when it closes: each one fetched counts as
	// a delivery. Fetch no more than get takes.
	prefetch := min(o.n, 64)
	if o.follow {
		prefetch = 1
	}
	q, err := r.openWithin(ctx, o.timeout, false, map[string]string{"prefetch": strconv.Itoa(prefetch)})
	if err != nil {
		return err
	}
	defer q.Close()
	// gctx also ends when the reader of a pipe on standard output goes
	// away: --follow then stops taking messages.
	gctx, readerGone := context.WithCancelCause(ctx)
	defer readerGone(nil)
	if o.follow {
		watchReader(e.stdout, func() { readerGone(errReaderGone) })
	}
	g := &getter{getFlags: o, ctx: ctx, gctx: gctx, r: r, q: q, w: bufio.NewWriter(e.stdout), sep: []byte("\n")}
	switch {
	case o.raw:
		g.sep = nil
	case o.null:
		g.sep = []byte{0}
	}
	return g.takeAll()
}

// A getter takes the messages of one mpq get and writes them out.
type getter struct {
	*getFlags
	ctx  context.Context // the command's
	gctx context.Context // ctx, also ended when the output's reader goes
	r    *queueRef
	q    mpq.MessageQueue
	w    *bufio.Writer
	sep  []byte // written after each message

	buf     []byte // the last message, its buffer reused
	written int    // messages taken and written to w
	flushed int    // messages written out of w
}

// takeAll takes -n messages (with --follow, until the end) and writes each
// out.
func (g *getter) takeAll() error {
	for g.follow || g.written < g.n {
		if context.Cause(g.gctx) == errReaderGone {
			if err := g.flush(); err != nil {
				return err
			}
			return fail(exitFailure, "get from %s: the reader of the output went away; took %d messages, wrote them all, of which the reader may have left some unread", g.r, g.written)
		}
		m, err := tryGet(g.q, g.buf[:0])
		if errors.Is(err, mpq.ErrEmpty) {
			// Flush what is printed before waiting, so that the reader
			// of a pipe sees each message as it comes.
			if err := g.flush(); err != nil {
				return err
			}
			m, err = getWait(g.gctx, g.q, g.buf[:0], g.timeout)
		}
		if err != nil {
			if errors.Is(err, context.Canceled) && context.Cause(g.gctx) == errReaderGone {
				continue // said at the top of the loop
			}
			return g.failed(err)
		}
		g.buf = m
		g.w.Write(m)
		g.w.Write(g.sep)
		g.written++
		if g.follow {
			// Take the next message only once this one is out: a
			// follower holds no more than its output does.
			if err := g.flush(); err != nil {
				return err
			}
		}
	}
	return g.flush()
}

// failed ends get after taking a message failed with err, once what is
// printed is flushed: the queue's end (nil with --follow), a timeout or an
// interrupt saying who kept it waiting, or err.
func (g *getter) failed(err error) error {
	if ferr := g.flush(); ferr != nil {
		return ferr
	}
	r := g.r
	switch {
	case errors.Is(err, io.EOF):
		if g.follow {
			return nil
		}
		return fail(exitSealed, "queue %s is sealed and drained: got %d of %d messages", r, g.written, g.n)
	case errors.Is(err, context.DeadlineExceeded) && g.gctx.Err() == nil:
		if h := r.blameGet(); h != nil {
			waiting := ""
			if h.stats.Len > 0 {
				waiting = fmt.Sprintf(", though %s wait", plural(h.stats.Len, "message"))
			}
			return fail(exitTimeout, "get from %s: no message taken within %v (%s)%s: %v; %s", r, g.timeout, g.got(), waiting, h, h.advice())
		}
		if g.follow {
			return fail(exitTimeout, "no message in queue %s within %v (got %d)", r, g.timeout, g.written)
		}
		return fail(exitTimeout, "no message in queue %s within %v: got %d of %d", r, g.timeout, g.written, g.n)
	case errors.Is(err, context.Canceled) && g.ctx.Err() != nil:
		detail := g.got()
		if h := r.blameGet(); h != nil {
			detail += "; waiting while " + h.String()
		}
		return ended(g.ctx, fmt.Sprintf("get from %s", r), detail)
	}
	return r.err(err)
}

// flush writes out what w holds; a failure there loses the messages taken
// since the last flush, and says so.
func (g *getter) flush() error {
	err := g.w.Flush()
	switch {
	case err == nil:
		g.flushed = g.written
		return nil
	case errors.Is(err, syscall.EPIPE):
		return fail(exitFailure, "get from %s: writing the output: its reader went away (broken pipe); took %d messages, wrote %d, of which the reader may have left some unread (%d taken messages not written)",
			g.r, g.written, g.flushed, g.written-g.flushed)
	}
	return fail(exitFailure, "get from %s: writing the output: %v (%d taken messages not written)", g.r, err, g.written-g.flushed)
}

// got says how many messages get took: "got 3 of 10", or "got 3".
func (g *getter) got() string {
	if g.follow {
		return fmt.Sprintf("got %d", g.written)
	}
	return fmt.Sprintf("got %d of %d", g.written, g.n)
}

// errReaderGone ends get --follow when the reader of its output is gone.
var errReaderGone = errors.New("the reader of the output went away")

// appendGetter is a queue that gets into a buffer of the caller's, as
// [mpq.Queue] does: get reuses one buffer for every message.
type appendGetter interface {
	TryAppendGet(dst []byte) ([]byte, error)
	AppendGet(ctx context.Context, dst []byte) ([]byte, error)
}

// tryGet takes a message if one is waiting, into dst if q can.
func tryGet(q mpq.MessageQueue, dst []byte) ([]byte, error) {
	if a, ok := q.(appendGetter); ok {
		return a.TryAppendGet(dst)
	}
	return q.TryGet()
}

// getWait waits for a message up to timeout (0: no limit).
func getWait(ctx context.Context, q mpq.MessageQueue, dst []byte, timeout time.Duration) ([]byte, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if a, ok := q.(appendGetter); ok {
		return a.AppendGet(ctx, dst)
	}
	return q.Get(ctx)
}

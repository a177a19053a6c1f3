package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

func init() { commands = append(commands, newPutCmd, newGetCmd, newSealCmd) }

func newPutCmd(e *env) *cobra.Command {
	var (
		lines, seal bool
		files       []string
		timeout     time.Duration
	)
	c := &cobra.Command{
		Use:   "put NAME [MESSAGE...]",
		Short: "Put messages into a queue",
		Long: `Put puts each MESSAGE argument into the queue, in order. With no MESSAGE
it reads standard input: one message for all of it, or one per line with
--lines. With --file, each file is one message (- is standard input).

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
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usage("put: want a queue name")
			}
			if len(args) > 1 && (lines || len(files) > 0) {
				return usage("put: give MESSAGE arguments, --lines or --file, not several")
			}
			if lines && len(files) > 0 {
				return usage("put: --lines reads standard input; it cannot be used with --file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return usage("put: --timeout %v: want a positive duration, or 0 for no limit", timeout)
			}
			r, err := e.ref(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			q, err := r.open(ctx, true, nil)
			if err != nil {
				return err
			}
			keep := false // a Seal left waiting for the lock still uses q
			defer func() {
				if !keep {
					q.Close()
				}
			}()
			var done atomic.Int64   // messages put
			var putting atomic.Bool // in q.Put, not reading the input
			put := func(i int, m []byte) error {
				putting.Store(true)
				defer putting.Store(false)
				if ctx.Err() != nil {
					return ended(ctx, fmt.Sprintf("put into %s", r), fmt.Sprintf("%d put", i)) // put nothing more
				}
				pctx, cancel := ctx, context.CancelFunc(func() {})
				if timeout > 0 {
					pctx, cancel = context.WithTimeout(ctx, timeout)
				}
				defer cancel()
				err := q.Put(pctx, m)
				switch {
				case err == nil:
					done.Add(1)
					return nil
				case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
					if h := r.blamePut(len(m)); h != nil {
						return fail(exitTimeout, "put into %s: message %d not put within %v (%d put)%s: %v; %s",
							r, i+1, timeout, i, h.room(), h, h.advice())
					}
					return fail(exitTimeout, "queue %s is full: no room for message %d within %v (%d put); take some out with: mpq get%s",
						r, i+1, timeout, i, r.cmdArg())
				case errors.Is(err, context.Canceled) && ctx.Err() != nil:
					what := fmt.Sprintf("put into %s", r)
					if h := r.blamePut(len(m)); h != nil {
						return ended(ctx, what, fmt.Sprintf("%d put; message %d was waiting%s: %v; %s", i, i+1, h.room(), h, h.advice()))
					}
					return ended(ctx, what, fmt.Sprintf("%d put; message %d was waiting for room", i, i+1))
				case errors.Is(err, mpq.ErrTooLarge):
					return r.tooLarge(ctx, q, i, fmt.Sprintf("%d bytes", len(m)))
				case errors.Is(err, nats.ErrMaxPayload):
					return fail(exitFailure, "message %d (%d bytes) is larger than the NATS server at %s takes (its max_payload)", i+1, len(m), r.server)
				}
				return r.err(err)
			}
			// Reading standard input may block for as long as its writer
			// likes: feed in a goroutine, so that an interrupt ends put at
			// once (what was put stays put).
			fed := make(chan error, 1)
			go func() { fed <- e.feed(ctx, q, r, args[1:], files, lines, put) }()
			select {
			case err := <-fed:
				if err != nil {
					return err
				}
			case <-ctx.Done():
				if putting.Load() {
					// Put returns at once, and says what it waited for.
					if err := <-fed; err != nil {
						return err
					}
				}
				return ended(ctx, fmt.Sprintf("put into %s", r), fmt.Sprintf("%d put", done.Load()))
			}
			if seal {
				keep, err = r.seal(ctx, q, timeout)
				return err
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&lines, "lines", false, "read standard input as one message per line")
	f.StringArrayVarP(&files, "file", "f", nil, "put the contents of `FILE` as one message (repeatable; - is standard input)")
	f.DurationVar(&timeout, "timeout", 0, "how long to wait for room in a full queue, and with --seal for the seal (0: as long as it takes)")
	f.BoolVar(&seal, "seal", false, "seal the queue afterwards: consumers drain it, then stop")
	return c
}

func newGetCmd(e *env) *cobra.Command {
	var (
		n           int
		timeout     time.Duration
		follow, raw bool
		null        bool
	)
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return usage("get: --timeout %v: want a positive duration, or 0 for no limit", timeout)
			}
			if n < 1 {
				return usage("get: -n %d: want at least 1", n)
			}
			if raw && null {
				return usage("get: choose --raw or --null, not both")
			}
			r, err := e.ref(args[0])
			if err != nil {
				return err
			}
			// A NATS handle fetches messages ahead of its gets, and gives
			// back those it did not hand out when it closes: each one
			// fetched counts as a delivery. Fetch no more than get takes.
			prefetch := min(n, 64)
			if follow {
				prefetch = 1
			}
			ctx := cmd.Context()
			q, err := r.open(ctx, false, map[string]string{"prefetch": strconv.Itoa(prefetch)})
			if err != nil {
				return err
			}
			defer q.Close()
			// gctx also ends when the reader of a pipe on standard output
			// goes away: --follow then stops taking messages.
			gctx, readerGone := context.WithCancelCause(ctx)
			defer readerGone(nil)
			if follow {
				watchReader(e.stdout, func() { readerGone(errReaderGone) })
			}
			w := bufio.NewWriter(e.stdout)
			sep := []byte("\n")
			switch {
			case raw:
				sep = nil
			case null:
				sep = []byte{0}
			}
			written := 0 // messages taken and written to w
			// flush writes out what w holds; a failure there loses the
			// messages taken since the last flush, and says so.
			flushed := 0
			flush := func() error {
				err := w.Flush()
				switch {
				case err == nil:
					flushed = written
					return nil
				case errors.Is(err, syscall.EPIPE):
					return fail(exitFailure, "get from %s: writing the output: its reader went away (broken pipe); took %d messages, wrote %d, of which the reader may have left some unread (%d taken messages not written)",
						r, written, flushed, written-flushed)
				}
				return fail(exitFailure, "get from %s: writing the output: %v (%d taken messages not written)", r, err, written-flushed)
			}
			got := func() string {
				if follow {
					return fmt.Sprintf("got %d", written)
				}
				return fmt.Sprintf("got %d of %d", written, n)
			}
			var buf []byte
			for follow || written < n {
				if context.Cause(gctx) == errReaderGone {
					if err := flush(); err != nil {
						return err
					}
					return fail(exitFailure, "get from %s: the reader of the output went away; took %d messages, wrote them all, of which the reader may have left some unread", r, written)
				}
				m, err := tryGet(q, buf[:0])
				if errors.Is(err, mpq.ErrEmpty) {
					// Flush what is printed before waiting, so that the
					// reader of a pipe sees each message as it comes.
					if err := flush(); err != nil {
						return err
					}
					m, err = getWait(gctx, q, buf[:0], timeout)
				}
				switch {
				case err == nil:
				case errors.Is(err, io.EOF):
					if err := flush(); err != nil || follow {
						return err
					}
					return fail(exitSealed, "queue %s is sealed and drained: got %d of %d messages", r, written, n)
				case errors.Is(err, context.DeadlineExceeded) && gctx.Err() == nil:
					if err := flush(); err != nil {
						return err
					}
					if h := r.blameGet(); h != nil {
						waiting := ""
						if h.stats.Len > 0 {
							waiting = fmt.Sprintf(", though %s wait", plural(h.stats.Len, "message"))
						}
						return fail(exitTimeout, "get from %s: no message taken within %v (%s)%s: %v; %s", r, timeout, got(), waiting, h, h.advice())
					}
					if follow {
						return fail(exitTimeout, "no message in queue %s within %v (got %d)", r, timeout, written)
					}
					return fail(exitTimeout, "no message in queue %s within %v: got %d of %d", r, timeout, written, n)
				case errors.Is(err, context.Canceled) && context.Cause(gctx) == errReaderGone:
					continue // said at the top of the loop
				case errors.Is(err, context.Canceled) && ctx.Err() != nil:
					if err := flush(); err != nil {
						return err
					}
					detail := got()
					if h := r.blameGet(); h != nil {
						detail += "; waiting while " + h.String()
					}
					return ended(ctx, fmt.Sprintf("get from %s", r), detail)
				default:
					if ferr := flush(); ferr != nil {
						return ferr
					}
					return r.err(err)
				}
				buf = m
				w.Write(m)
				w.Write(sep)
				written++
				if follow {
					// Take the next message only once this one is out: a
					// follower holds no more than its output does.
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := flush(); err != nil {
				return err
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVarP(&n, "count", "n", 1, "how many messages to take")
	f.DurationVar(&timeout, "timeout", 0, "how long to wait for each message (0: as long as it takes)")
	f.BoolVarP(&follow, "follow", "f", false, "keep taking messages until the queue is sealed and drained")
	f.BoolVar(&raw, "raw", false, "print the message bytes alone, nothing between messages")
	f.BoolVarP(&null, "null", "0", false, "end each message with a NUL byte instead of a newline")
	return c
}

// tooLarge is the error for message i, of size (in words: "40000 bytes"),
// that q does not take.
func (r *queueRef) tooLarge(ctx context.Context, q mpq.MessageQueue, i int, size string) error {
	return fail(exitFailure, "message %d (%s) is larger than queue %s takes (%d bytes); %s",
		i+1, size, r, r.maxMessage(ctx, q), r.largerHint())
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

// feed puts the messages put was given: msgs, or each file, or the lines
// of standard input, or all of it as one message.
func (e *env) feed(ctx context.Context, q mpq.MessageQueue, r *queueRef, msgs, files []string, lines bool, put func(int, []byte) error) error {
	n := 0
	switch {
	case len(msgs) > 0:
		for _, m := range msgs {
			if err := put(n, []byte(m)); err != nil {
				return err
			}
			n++
		}
	case len(files) > 0:
		maxMsg := r.maxMessage(ctx, q)
		for _, path := range files {
			m, err := e.readMessage(path, maxMsg)
			if big, ok := errors.AsType[*tooLargeError](err); ok {
				return r.tooLarge(ctx, q, n, big.size)
			}
			if err != nil {
				return fail(exitFailure, "put into %s: %v", r, err)
			}
			if err := put(n, m); err != nil {
				return err
			}
			n++
		}
	case lines:
		sc := bufio.NewScanner(e.stdin)
		// Room for a line of the largest message and its "\r\n".
		maxMsg := r.maxMessage(ctx, q)
		sc.Buffer(make([]byte, 64<<10), max(maxMsg, 64<<10)+2)
		for sc.Scan() {
			if err := put(n, sc.Bytes()); err != nil {
				return err
			}
			n++
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return fail(exitFailure, "line %d is longer than queue %s takes (%d bytes)", n+1, r, maxMsg)
			}
			return fail(exitFailure, "put into %s: reading standard input: %v", r, err)
		}
	default:
		m, err := e.readMessage("-", r.maxMessage(ctx, q))
		if big, ok := errors.AsType[*tooLargeError](err); ok {
			return r.tooLarge(ctx, q, n, big.size)
		}
		if err != nil {
			return fail(exitFailure, "put into %s: %v", r, err)
		}
		if len(m) == 0 {
			// Most likely the command feeding put failed: do not queue
			// an empty job for it.
			return fail(exitFailure, "put into %s: standard input is empty, nothing put (an empty message is put with: mpq put %s '')", r, r)
		}
		if err := put(n, m); err != nil {
			return err
		}
	}
	return nil
}

// A tooLargeError is what readMessage returns for a message over the
// limit.
type tooLargeError struct{ size string } // in words: "40000 bytes"

func (e *tooLargeError) Error() string { return "message of " + e.size + " is too large" }

// readMessage reads the file at path (- is standard input) as one message
// of at most limit bytes. It reads no more than limit+1 bytes: a larger
// message is a *tooLargeError, read no further (a 2 GiB standard input is not
// read into memory to be refused).
func (e *env) readMessage(path string, limit int) ([]byte, error) {
	what := "standard input"
	r := e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > int64(limit) {
			return nil, &tooLargeError{size: fmt.Sprintf("%d bytes", fi.Size())}
		}
		what, r = path, f
	}
	m, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(m) > limit {
		return nil, &tooLargeError{size: fmt.Sprintf("more than %d bytes of %s, read no further", limit, what)}
	}
	return m, nil
}

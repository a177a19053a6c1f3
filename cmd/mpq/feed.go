package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mpq-go/mpq"
)

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

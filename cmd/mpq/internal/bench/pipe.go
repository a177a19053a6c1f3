//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mpq-go/mpq"
)

// pipeTransport links two processes with an mpq.Pipe: one-way for
// throughput (side a holds the sending end, side b the receiving end),
// duplex for round trips. Like Python's Pipe, an end belongs to one process
// at a time and the stream ends when the sending end is closed, so the
// transport is an [ownedTransport]. The receiver calls Recv, which
// allocates each message, or with appendRecv AppendRecv into a reused
// buffer.
type pipeTransport struct{ appendRecv bool }

func (pipeTransport) ownedEnds() {}

// pipeConfig describes the Pipes for the table.
func pipeConfig() string {
	return "Pipe: mpq.Pipe (1 MiB ring each way), ends handed to children with Conn.Files / mpq.FileConn, " +
		"which opens the rings with default Options whatever -spin says"
}

// link makes a Pipe and keeps only the files of its ends (Conn.Files:
// socket, receive ring or nil, send ring or nil); the Conns themselves are
// closed at once, and the files keep the connection open.
func (pipeTransport) link(duplex bool) (*link, error) {
	recv, send, err := mpq.Pipe(duplex)
	if err != nil {
		return nil, err
	}
	b, errB := recv.Files()
	a, errA := send.Files()
	err = errors.Join(errA, errB, recv.Close(), send.Close())
	l := &link{a: a, b: b}
	for _, f := range append(a, b...) {
		if f != nil {
			l.files = append(l.files, f)
		}
	}
	if err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// open makes the end again with mpq.FileConn, which duplicates files: the
// caller may close them at once, and must for the peer to see the end of
// the stream once this end is closed.
func (t pipeTransport) open(files []*os.File) (*ends, error) {
	if len(files) != 3 {
		return nil, fmt.Errorf("pipe side has %d files; want 3", len(files))
	}
	c, err := mpq.FileConn(files)
	if err != nil {
		return nil, err
	}
	e := &pipeEnd{c: c, appendRecv: t.appendRecv}
	return &ends{in: e, out: e, close: e.close}, nil
}

// pipeEnd is one end of a Pipe, used one way or both ways.
type pipeEnd struct {
	c          *mpq.Conn
	appendRecv bool
	buf        []byte // AppendRecv destination, reused
}

func (e *pipeEnd) put(ctx context.Context, msg []byte, n int) error {
	for range n {
		if err := e.c.Send(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

func (e *pipeEnd) get(ctx context.Context) (int, int, error) {
	if e.appendRecv {
		var err error
		e.buf, err = e.c.AppendRecv(ctx, e.buf[:0])
		if err != nil {
			return 0, 0, err
		}
		return 1, len(e.buf), nil
	}
	msg, err := e.c.Recv(ctx)
	if err != nil {
		return 0, 0, err
	}
	return 1, len(msg), nil
}

// closeWrite closes the end: the peer receives what was sent, then io.EOF.
func (e *pipeEnd) closeWrite() error { return e.close() }

// close closes the end once; closing it again does nothing.
func (e *pipeEnd) close() error {
	if err := e.c.Close(); !errors.Is(err, mpq.ErrClosed) {
		return err
	}
	return nil
}

package mpq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/ring"
)

// MaxConnMessage is the largest message a [Conn] carries. Messages longer
// than a Conn's ring takes in one record travel in parts and are put back
// together by Recv.
const MaxConnMessage = 1 << 30

// Ring geometry of each direction of a Conn made by Pipe or Listen.
const (
	defaultConnCapacity = 1 << 20
	readAhead           = 64       // records a Recv takes from the ring at once
	readAheadBytes      = 64 << 10 // bytes a Recv takes from the ring at once
)

// Every ring record of a Conn ends with one byte saying what it holds. A
// message that fits one record is sent as one frameWhole record; a longer one
// as a frameBegin record holding its length (8 bytes, little endian), then
// frameMore records and a last frameEnd record. frameAbort tells the
// receiver to drop a message whose sending was cut short.
const (
	frameWhole byte = iota
	frameBegin
	frameMore
	frameEnd
	frameAbort
)

// A Conn is one end of a connection made by [Pipe], [Listener.Accept] or
// [Dial]: messages sent at one end arrive at the other whole and in order.
// Each direction is a ring in shared memory; a Unix socket between the ends
// carries no messages but tells each end when the other is gone, which is how
// Recv returns io.EOF even when the peer process was killed.
//
// All methods are safe for concurrent use by multiple goroutines. An end
// belongs to one process at a time: a process that hands an end to a child
// (see [Conn.Files]) should Close its own copy, as with Python's Pipe,
// otherwise the peer sees no EOF when the child exits.
type Conn struct {
	in, out *handle // nil when this end does not receive, or does not send
	sock    *net.UnixConn

	sendGate  gate // one sender at a time: a long message goes out in parts
	sendAbort bool // under sendGate: a cut-short message must be dropped first
	chunk     int  // the longest message part one record of out carries

	rmu   sync.Mutex // guards the receive state below
	rbuf  []byte     // records taken from in, not yet returned
	rends []int      // end offset in rbuf of each record
	rnext int        // index in rends of the next record
	rpos  int        // offset in rbuf of the next record
	part  []byte     // the parts received of a long message
	want  int        // the length of that message; -1 when none is open

	closed   atomic.Bool
	peerGone atomic.Bool
	watching chan struct{}      // closed when the watcher has returned
	stop     context.Context    // done at Close or when the peer is gone: ends Sends' waits
	stopNow  context.CancelFunc // ends stop
}

// newConn makes a Conn of its socket and rings, taking ownership of them.
func newConn(sock *net.UnixConn, in, out *handle) *Conn {
	c := &Conn{in: in, out: out, sock: sock, want: -1, watching: make(chan struct{})}
	c.stop, c.stopNow = context.WithCancel(context.Background())
	c.sendGate.init()
	if out != nil {
		c.chunk = int(out.r.MaxMessage()) - 1
	}
	go c.watch()
	return c
}

// watch waits for the peer to close its end or die, then seals the ring it
// receives from, so that what was sent is still received and then Recv
// returns io.EOF, and makes Send return ErrPeerClosed.
func (c *Conn) watch() {
	defer close(c.watching)
	raw, err := c.sock.SyscallConn()
	if err == nil {
		var b [64]byte
		// MSG_DONTWAIT: the socket's open file description is shared with
		// every copy made by Files, and a copy passed through
		// exec.Cmd.ExtraFiles is switched to blocking mode by File.Fd. The
		// wait is the runtime poller's either way, so Close can end it.
		read := func() error {
			return raw.Read(func(fd uintptr) bool {
				for {
					n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_DONTWAIT)
					switch {
					case err == unix.EINTR:
						continue
					case err == unix.EAGAIN:
						return false
					case n > 0:
						continue // a peer sends nothing once connected: ignore it
					}
					return true // EOF, or the socket failed
				}
			})
		}
		// A deadline of the handshake may still fire as it ends: clear it
		// and go on watching.
		for err = read(); errors.Is(err, os.ErrDeadlineExceeded) && !c.closed.Load(); err = read() {
			c.sock.SetReadDeadline(time.Time{})
		}
	}
	if c.closed.Load() {
		return
	}
	c.peerGone.Store(true)
	c.stopNow()
	if c.in != nil {
		c.in.r.Seal()
		c.in.wakeLocal(forData) // in case Seal failed: Recv sees peerGone
	}
}

// String describes the end for logs.
func (c *Conn) String() string {
	switch {
	case c.in != nil && c.out != nil:
		return "mpq.Conn(duplex)"
	case c.in != nil:
		return "mpq.Conn(receive)"
	default:
		return "mpq.Conn(send)"
	}
}

// CanSend reports whether this end sends: false for the receiving end of a
// one-way pipe.
func (c *Conn) CanSend() bool { return c.out != nil }

// CanRecv reports whether this end receives: false for the sending end of a
// one-way pipe.
func (c *Conn) CanRecv() bool { return c.in != nil }

// Send sends msg to the other end, waiting while the connection is full. It
// returns once msg is in shared memory, where the peer's Recv finds it even
// if this process dies next. It returns ErrPeerClosed if the other end is
// closed or its process is gone, ErrWrongDirection on the receiving end of a
// one-way pipe, ErrTooLarge for a message over [MaxConnMessage], ErrClosed
// after Close, or ctx.Err() if ctx is done first. Send copies msg.
func (c *Conn) Send(ctx context.Context, msg []byte) error {
	if ctx == nil {
		return ErrNilContext
	}
	if err := c.checkSend(msg); err != nil {
		return err
	}
	if err := c.sendGate.lock(ctx); err != nil {
		return err
	}
	defer c.sendGate.unlock()
	return c.send(ctx, msg, false)
}

// TrySend is Send without waiting: it returns ErrFull if the connection has
// no room for all of msg now.
func (c *Conn) TrySend(msg []byte) error {
	if err := c.checkSend(msg); err != nil {
		return err
	}
	if !c.sendGate.tryLock() {
		return ErrFull
	}
	defer c.sendGate.unlock()
	return c.send(context.Background(), msg, true)
}

func (c *Conn) checkSend(msg []byte) error {
	if c.out == nil {
		return fmt.Errorf("%w: Send on the receiving end", ErrWrongDirection)
	}
	if len(msg) > MaxConnMessage {
		return fmt.Errorf("%w: message of %d bytes, the most a Conn takes is %d", ErrTooLarge, len(msg), MaxConnMessage)
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// send runs under sendGate, which also keeps Close from closing out
// meanwhile.
func (c *Conn) send(ctx context.Context, msg []byte, try bool) error {
	switch {
	case c.closed.Load():
		return ErrClosed
	case c.peerGone.Load():
		return ErrPeerClosed
	}
	var mark [1]byte
	if c.sendAbort {
		mark[0] = frameAbort
		if err := c.put(ctx, nil, mark[:], try); err != nil {
			return err
		}
		c.sendAbort = false
	}
	if len(msg) <= c.chunk {
		mark[0] = frameWhole
		return c.put(ctx, msg, mark[:], try)
	}
	if try {
		// All or nothing: the parts must all fit now.
		// At most one record is preceded by padding at the end of the ring.
		full, rest := len(msg)/c.chunk, len(msg)%c.chunk
		need := ring.RecordSize(9) + uint64(full)*ring.RecordSize(c.chunk+1) + ring.RecordSize(c.chunk+1)
		if rest > 0 {
			need += ring.RecordSize(rest + 1)
		}
		if c.out.r.Free() < need {
			if err := c.out.r.Faulted(); err != nil {
				return err
			}
			return ErrFull
		}
	}
	var begin [9]byte
	binary.LittleEndian.PutUint64(begin[:8], uint64(len(msg)))
	begin[8] = frameBegin
	if err := c.put(ctx, nil, begin[:], try); err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(len(msg), c.chunk)
		mark[0] = frameMore
		if n == len(msg) {
			mark[0] = frameEnd
		}
		if err := c.put(ctx, msg[:n], mark[:], try); err != nil {
			c.sendAbort = !errors.Is(err, ErrPeerClosed) && !errors.Is(err, ErrClosed)
			return err
		}
		msg = msg[n:]
	}
	return nil
}

// put writes one record of msg and trailer into out. It runs under
// sendGate: no other goroutine of this process puts into out meanwhile.
func (c *Conn) put(ctx context.Context, msg, trailer []byte, try bool) error {
	r := c.out.r
	err := r.PutTrailerExclusive(msg, trailer, ring.Try)
	if again(err) && !try {
		err = c.putSlow(ctx, msg, trailer)
	}
	switch {
	case err == nil:
		return nil
	case err == ring.ErrBusy:
		return ErrFull
	case c.closed.Load():
		return ErrClosed
	case c.peerGone.Load() || errors.Is(err, ErrSealed):
		return ErrPeerClosed
	}
	return err
}

// putSlow waits for room in out, until ctx is done or the connection stops.
func (c *Conn) putSlow(ctx context.Context, msg, trailer []byte) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.stop, cancel)()
	r, need := c.out.r, len(msg)+len(trailer)
	err := c.out.block(wctx, forSpace, func() bool { return r.HasSpace(need) }, func(done <-chan struct{}) error {
		return r.PutTrailerExclusive(msg, trailer, ring.Block(done))
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Recv returns the next message from the other end, waiting until one
// arrives. Once the other end is closed, or its process has died, and every
// message it sent has been received, Recv returns io.EOF. It returns
// ErrWrongDirection on the sending end of a one-way pipe, ErrClosed after
// Close, or ctx.Err() if ctx is done first.
func (c *Conn) Recv(ctx context.Context) ([]byte, error) {
	b, err := c.AppendRecv(ctx, nil)
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// TryRecv is Recv without waiting: it returns ErrEmpty if no whole message
// has arrived.
func (c *Conn) TryRecv() ([]byte, error) {
	b, err := c.tryRecv(nil)
	if err == ring.ErrBusy {
		err = ErrEmpty
	}
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// AppendRecv is Recv appending the message to dst and returning the
// extended slice: with a dst of enough capacity it allocates nothing.
func (c *Conn) AppendRecv(ctx context.Context, dst []byte) ([]byte, error) {
	if ctx == nil {
		return dst, ErrNilContext
	}
	out, err := c.tryRecv(dst)
	if !again(err) {
		return out, err
	}
	out = dst
	err = c.in.block(ctx, forData, c.in.r.HasData, func(done <-chan struct{}) error {
		var err error
		out, err = c.tryRecv(dst)
		return err
	})
	if err != nil {
		out = dst
	}
	return out, err
}

func (c *Conn) tryRecv(dst []byte) ([]byte, error) {
	if c.in == nil {
		return dst, fmt.Errorf("%w: Recv on the sending end", ErrWrongDirection)
	}
	if c.closed.Load() {
		return dst, ErrClosed
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.rnext == len(c.rends) {
			if err := c.refill(); err != nil {
				return dst, err
			}
		}
		end := c.rends[c.rnext]
		rec := c.rbuf[c.rpos:end]
		c.rnext++
		c.rpos = end
		msg, done, fresh, err := c.frame(rec)
		if err != nil {
			return dst, err
		}
		if done {
			if fresh && dst == nil {
				return msg, nil // a long message, put together in a new slice
			}
			return append(dst, msg...), nil
		}
	}
}

// refill takes the next records from the ring into rbuf.
func (c *Conn) refill() error {
	c.rbuf, c.rends, c.rnext, c.rpos = c.rbuf[:0], c.rends[:0], 0, 0
	var n int
	var err error
	c.rbuf, n, err = c.in.r.GetBatch(c.rbuf, &c.rends, readAhead, readAheadBytes, ring.Try)
	if n > 0 {
		return nil
	}
	if err == ErrEmpty && c.peerGone.Load() {
		// The peer is gone, yet the ring is not sealed (a peer that wedged
		// or unsealed it on its way out): what it sent before it went, which
		// a look after reading peerGone sees, is all there is.
		c.rbuf, n, err = c.in.r.GetBatch(c.rbuf, &c.rends, readAhead, readAheadBytes, ring.Try)
		if n > 0 {
			return nil
		}
		if err == ErrEmpty {
			err = io.EOF
		}
	}
	if err == io.EOF {
		c.part, c.want = nil, -1 // a message cut short by the peer's end
	}
	return err
}

// frame reads one record. It returns a whole message and true, or false if
// the record was a part of a message not yet complete. fresh reports whether
// the message is a slice of its own (put together from parts) rather than a
// view of rbuf.
func (c *Conn) frame(rec []byte) (msg []byte, done, fresh bool, err error) {
	if len(rec) == 0 {
		return nil, false, false, fmt.Errorf("%w: empty record in a connection", ErrCorrupt)
	}
	kind, body := rec[len(rec)-1], rec[:len(rec)-1]
	open := c.want >= 0
	switch {
	case kind == frameWhole && !open:
		return body, true, false, nil
	case kind == frameBegin && !open && len(body) == 8:
		n := binary.LittleEndian.Uint64(body)
		if n > MaxConnMessage {
			return nil, false, false, fmt.Errorf("%w: the peer announced a message of %d bytes, over %d", ErrCorrupt, n, MaxConnMessage)
		}
		c.want = int(n)
		c.part = make([]byte, 0, min(c.want, 64<<20))
		return nil, false, false, nil
	case (kind == frameMore || kind == frameEnd) && open:
		if len(c.part)+len(body) > c.want || kind == frameEnd && len(c.part)+len(body) != c.want {
			c.part, c.want = nil, -1
			return nil, false, false, fmt.Errorf("%w: message parts do not add up to the announced length", ErrCorrupt)
		}
		c.part = append(c.part, body...)
		if kind == frameMore {
			return nil, false, false, nil
		}
		msg := c.part
		c.part, c.want = nil, -1
		return msg, true, true, nil
	case kind == frameAbort:
		c.part, c.want = nil, -1
		return nil, false, false, nil
	}
	c.part, c.want = nil, -1
	return nil, false, false, fmt.Errorf("%w: unexpected record of kind %d in a connection", ErrCorrupt, kind)
}

// Poll waits until Recv would not block: a message has arrived, or the
// other end is gone (Recv then returns io.EOF). It returns true, or false and
// ctx.Err() if ctx is done first. A message sent in parts may make Recv wait
// for its last parts even after Poll returned true.
func (c *Conn) Poll(ctx context.Context) (bool, error) {
	if ctx == nil {
		return false, ErrNilContext
	}
	if c.in == nil {
		return false, fmt.Errorf("%w: Poll on the sending end", ErrWrongDirection)
	}
	ready := func() bool {
		c.rmu.Lock()
		defer c.rmu.Unlock()
		return c.rnext < len(c.rends) || c.in.r.HasData() || c.in.r.Closed()
	}
	if !c.in.enter() { // Close does not unmap the ring under ready
		return false, ErrClosed
	}
	ok := ready()
	c.in.leave()
	if ok {
		return true, nil
	}
	err := c.in.block(ctx, forData, c.in.r.HasData, func(<-chan struct{}) error {
		if ready() {
			return nil
		}
		return ErrEmpty
	})
	if err != nil {
		return false, err
	}
	return true, nil
}

// Close closes this end. The peer receives what was sent before Close and
// then io.EOF; its Sends fail with ErrPeerClosed. Blocked Sends and Recvs of
// this end return ErrClosed. Close is idempotent: later calls return
// ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return ErrClosed
	}
	c.stopNow() // a Send waiting for room gives up and leaves sendGate
	err := c.sock.Close()
	<-c.watching
	if c.in != nil {
		if e := c.in.Close(); err == nil {
			err = e
		}
	}
	if c.out != nil {
		c.sendGate.lock(context.Background())
		if e := c.out.Close(); err == nil {
			err = e
		}
		c.sendGate.unlock()
	}
	return err
}

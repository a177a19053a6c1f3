package mpq

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/shm"
)

// Pipe returns the two connected ends of a new connection, as Python's
// multiprocessing.Pipe does. With duplex true both ends send and receive.
// With duplex false the first end only receives and the second only sends;
// the other direction returns ErrWrongDirection.
//
// Both ends start in this process. Hand one to a child process with
// [Conn.Files] and [FileConn] (the proc package does this for you), then
// Close it here.
//
// A pipe takes descriptors: two sockets, and for each direction a memfd
// with two handles on it. A process without enough of them gets an error
// matching ErrTooManyFiles, and keeps none of those it had taken.
func Pipe(duplex bool) (*Conn, *Conn, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, nil, fmt.Errorf("mpq: pipe: %w", err)
	}
	var socks [2]*net.UnixConn
	for i, fd := range fds {
		if socks[i], err = fdSocket(fd, "mpq-pipe"); err != nil {
			if i == 0 {
				unix.Close(fds[1])
			} else {
				socks[0].Close()
			}
			return nil, nil, fmt.Errorf("mpq: pipe: %w", err)
		}
	}
	var rings []*handle // first end's then second end's handle of each ring
	fail := func(err error) (*Conn, *Conn, error) {
		for _, q := range rings {
			q.Close()
		}
		socks[0].Close()
		socks[1].Close()
		return nil, nil, fmt.Errorf("mpq: pipe: %w", err)
	}
	n := 1
	if duplex {
		n = 2
	}
	for range n {
		a, b, err := connRing(nil)
		if err != nil {
			return fail(err)
		}
		rings = append(rings, a, b)
	}
	// rings[0:2] carries second -> first; rings[2:4] first -> second.
	var firstOut, secondIn *handle
	if duplex {
		firstOut, secondIn = rings[2], rings[3]
	}
	first := newConn(socks[0], rings[0], firstOut)
	second := newConn(socks[1], secondIn, rings[1])
	return first, second, nil
}

// socketpair returns a connected pair of close-on-exec stream sockets. (Not
// every system takes SOCK_CLOEXEC in socketpair; ForkLock keeps a fork from
// seeing them before they are marked.)
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fds, shm.Explain("socketpair", err)
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds, nil
}

// connRing makes the ring of one direction of a connection and returns two
// handles on it, one for each end.
func connRing(opts *Options) (*handle, *handle, error) {
	if opts == nil {
		opts = &Options{Capacity: defaultConnCapacity}
	}
	s, err := opts.settings()
	if err != nil {
		return nil, nil, err
	}
	a, err := newAnonymous(s)
	if err != nil {
		return nil, nil, cmp.Or(shm.ExplainLimit("make a connection ring", err), err)
	}
	f, err := a.File()
	if err != nil {
		a.Close()
		return nil, nil, cmp.Or(shm.ExplainLimit("make a connection ring", err), err)
	}
	defer f.Close()
	b, err := openFile(f, s)
	if err != nil {
		a.Close()
		return nil, nil, cmp.Or(shm.ExplainLimit("make a connection ring", err), err)
	}
	return a, b, nil
}

// fdSocket makes a *net.UnixConn of a socket descriptor, taking ownership
// of it.
func fdSocket(fd int, name string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, cmp.Or(shm.ExplainLimit("socket", err), fmt.Errorf("mpq: socket: %w", err))
	}
	sock, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("%w: not a Unix socket", ErrIncompatible)
	}
	return sock, nil
}

// Files returns new descriptors of this end, to hand to a child process that
// makes the end again with [FileConn]: the socket, the ring it receives from
// (nil if it does not receive) and the ring it sends to (nil if it does not
// send). They are close-on-exec; exec.Cmd.ExtraFiles passes them all the
// same. The caller closes them.
func (c *Conn) Files() ([]*os.File, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	files := make([]*os.File, 3)
	fail := func(err error) ([]*os.File, error) {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
		return nil, err
	}
	var err error
	if files[0], err = c.sock.File(); err != nil {
		return fail(fmt.Errorf("mpq: duplicate connection socket: %w", err))
	}
	for i, q := range []*handle{c.in, c.out} {
		if q != nil {
			if files[1+i], err = q.File(); err != nil {
				return fail(err)
			}
		}
	}
	return files, nil
}

// FileConn makes a Conn of descriptors from [Conn.Files], typically
// inherited from the parent process: files[0] is the socket, files[1] the
// ring to receive from or nil, files[2] the ring to send to or nil. The Conn
// uses duplicates: the caller closes files.
func FileConn(files []*os.File) (*Conn, error) {
	if len(files) != 3 || files[0] == nil || files[1] == nil && files[2] == nil {
		return nil, fmt.Errorf("%w: FileConn wants a socket and one or two rings", ErrInvalidOptions)
	}
	// Not Fd: it would switch the socket, shared with other processes, to
	// blocking mode.
	typ, err := -1, error(nil)
	if raw, rerr := files[0].SyscallConn(); rerr != nil {
		err = rerr
	} else if cerr := raw.Control(func(fd uintptr) { typ, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE) }); cerr != nil {
		err = cerr
	}
	if err != nil || typ != unix.SOCK_STREAM {
		return nil, fmt.Errorf("%w: %s is not a stream socket", ErrIncompatible, files[0].Name())
	}
	nc, err := net.FileConn(files[0])
	if err != nil {
		return nil, fmt.Errorf("mpq: connection socket %s: %w", files[0].Name(), err)
	}
	sock, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("%w: %s is not a Unix socket", ErrIncompatible, files[0].Name())
	}
	var qs [2]*handle
	for i, f := range files[1:] {
		if f == nil {
			continue
		}
		q, err := openConnRing(f)
		if err != nil {
			sock.Close()
			if qs[0] != nil {
				qs[0].Close()
			}
			return nil, err
		}
		qs[i] = q
	}
	return newConn(sock, qs[0], qs[1]), nil
}

// openConnRing opens a ring of a connection from its file.
func openConnRing(f *os.File) (*handle, error) {
	// A ring whose size the peer could change could be shrunk under our
	// mapping, which would kill this process with SIGBUS.
	if !shm.SizeSealed(f) {
		return nil, fmt.Errorf("%w: a connection ring must be a memfd sealed against resizing", ErrIncompatible)
	}
	s, err := (*Options)(nil).settings()
	if err != nil {
		return nil, err
	}
	q, err := openFile(f, s)
	if err == nil && q.r.MaxMessage() < 16 {
		q.Close()
		err = fmt.Errorf("%w: a connection ring takes messages of %d bytes", ErrIncompatible, q.r.MaxMessage())
	}
	return q, err
}

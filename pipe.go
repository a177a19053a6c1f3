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

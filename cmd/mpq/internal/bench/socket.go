//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// socketTransport links two processes with a unix socketpair of type
// SOCK_SEQPACKET: one write(2) per message and one read(2) per message,
// with message boundaries kept by the kernel, so that several producers
// and consumers can share one pair of descriptors.
type socketTransport struct{}

// maxSocketMsg bounds the messages a socket end reads.
const maxSocketMsg = 1 << 20

func (socketTransport) link(bool) (*link, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	a := os.NewFile(uintptr(fds[0]), "socket-a")
	b := os.NewFile(uintptr(fds[1]), "socket-b")
	return &link{a: []*os.File{a}, b: []*os.File{b}, files: []*os.File{a, b}}, nil
}

// open uses files[0] both ways. The ends borrow it: the caller keeps it
// open while they are in use.
func (socketTransport) open(files []*os.File) (*ends, error) {
	if len(files) != 1 {
		return nil, fmt.Errorf("socket side has %d files; want 1", len(files))
	}
	e := &socketEnd{f: files[0], fd: int(files[0].Fd()), buf: make([]byte, maxSocketMsg)}
	return &ends{in: e, out: e, close: func() error { return nil }}, nil
}

// socketEnd makes blocking system calls on a socket descriptor directly,
// bypassing the Go network poller.
type socketEnd struct {
	f   *os.File // keeps fd open
	fd  int
	buf []byte
}

func (e *socketEnd) put(_ context.Context, msg []byte, n int) error {
	for range n {
		w, err := unix.Write(e.fd, msg)
		for err == unix.EINTR {
			w, err = unix.Write(e.fd, msg)
		}
		if err != nil {
			return fmt.Errorf("socket write: %w", err)
		}
		if w != len(msg) {
			return fmt.Errorf("socket write: %d of %d bytes", w, len(msg))
		}
	}
	return nil
}

func (e *socketEnd) get(context.Context) (int, int, error) {
	r, err := unix.Read(e.fd, e.buf)
	for err == unix.EINTR {
		r, err = unix.Read(e.fd, e.buf)
	}
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("socket read: %w", err)
	case r == 0:
		return 0, 0, io.EOF
	}
	return 1, r, nil
}

func (e *socketEnd) closeWrite() error { return unix.Shutdown(e.fd, unix.SHUT_WR) }

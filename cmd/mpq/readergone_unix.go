//go:build unix

package main

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// watchReader calls gone once the reader of w, a pipe or a socket, has
// closed its end, so that get --follow stops taking messages nobody will
// read. It watches nothing for other writers (files, terminals, buffers).
func watchReader(w io.Writer, gone func()) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return
	}
	// Not f.Fd, which would put w in blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	fd := -1
	rc.Control(func(d uintptr) { fd = int(d) })
	if fd < 0 {
		return
	}
	go func() {
		// With no events asked for, poll still reports POLLERR (a pipe
		// with no reader left) and POLLHUP (a socket shut down).
		fds := []unix.PollFd{{Fd: int32(fd)}}
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				gone()
			}
			return
		}
	}()
}

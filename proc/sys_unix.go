//go:build unix

package proc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// tempPayload returns an unlinked temporary file holding data, positioned
// at its start.
func tempPayload(data []byte) (*os.File, error) {
	f, err := os.CreateTemp("", ".mpq-proc-args-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write arguments: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write arguments: %w", err)
	}
	return f, nil
}

// dupFile returns a new descriptor of f's open file. Its *os.File leaves
// the file's blocking mode alone when exec.Cmd calls its Fd method, which
// the *os.File of a socket (net.UnixConn.File) or of os.Pipe does not: it
// would make the open file blocking, in every process that shares it, and
// a goroutine of this process reading from it could then block for good.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("duplicate %s: %w", f.Name(), derr)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

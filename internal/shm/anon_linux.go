//go:build linux

package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func anonymous() (*os.File, error) {
	fd, err := unix.MemfdCreate("mpq", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("mpq: memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), "memfd:mpq"), nil
}

// sealSize forbids changing the size of a memfd, so that a process it is
// handed to cannot shrink it under the mapping of another.
func sealSize(f *os.File) error {
	_, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)
	return err
}

// SizeSealed reports whether f is a memfd whose size nobody can change.
func SizeSealed(f *os.File) bool {
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	return err == nil && seals&unix.F_SEAL_SHRINK != 0
}

//go:build linux

package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func anonymous() (*os.File, error) {
	fd, err := unix.MemfdCreate("mpq", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mpq: memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), "memfd:mpq"), nil
}

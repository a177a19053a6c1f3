//go:build linux || darwin || freebsd

package shm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// addrSpace is the address-space limit for an error message.
func addrSpace() string {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_AS, &rl) != nil {
		return "unknown"
	}
	if rl.Cur == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprintf("%d bytes", rl.Cur)
}

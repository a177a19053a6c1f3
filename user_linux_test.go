package mpq_test

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// becomeUser makes this process run as uid.
func becomeUser(uid int) error {
	if err := syscall.Setuid(uid); err != nil {
		return err
	}
	// Changing uid makes a process undumpable, which closes its own
	// /proc/self/fd to it; a process started as that user is not so.
	return unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
}

//go:build linux

package testutil

import "syscall"

// dieWithParent makes a child receive SIGKILL when this process dies.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

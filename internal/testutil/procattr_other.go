//go:build !linux

package testutil

import "syscall"

// dieWithParent: without Pdeathsig, children rely on the test's cleanup.
func dieWithParent() *syscall.SysProcAttr { return nil }

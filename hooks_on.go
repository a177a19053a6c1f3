//go:build mpqhooks

package mpq

import (
	"os"
	"sync/atomic"
	"time"
)

// Test hooks, in builds with the tag mpqhooks only (see internal/ring's
// hooks.go): release builds pay nothing for them.

// inspectMapped, if set (by tests), runs once Inspect has mapped the file.
var inspectMapped func(f *os.File)

// hookInspectMapped calls inspectMapped, if set.
func hookInspectMapped(f *os.File) {
	if inspectMapped != nil {
		inspectMapped(f)
	}
}

// sleepSliceForTest, if set (by tests), replaces the slices that bound one
// sleep in the kernel (sleepSlice, heldSlice): a test that sets it to an
// hour sees a blocked call return only if something woke it.
var sleepSliceForTest atomic.Int64

// sliceOf is d, or sleepSliceForTest if set.
func sliceOf(d time.Duration) time.Duration {
	if t := sleepSliceForTest.Load(); t > 0 {
		return time.Duration(t)
	}
	return d
}

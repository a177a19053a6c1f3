//go:build mpqhooks

package mpq

import "time"

// SetSleepSlice makes every sleep of a blocked call in the kernel last up
// to d instead of its slice, until the returned func restores the slices.
// With d long, a blocked call returns only if something wakes it.
func SetSleepSlice(d time.Duration) (restore func()) {
	sleepSliceForTest.Store(int64(d))
	return func() { sleepSliceForTest.Store(0) }
}

//go:build !linux

package futex

import (
	"sync/atomic"
	"time"
)

// pollInterval bounds the wake-up latency of the polling fallback.
const pollInterval = 200 * time.Microsecond

func wait(addr *uint32, val uint32, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for atomic.LoadUint32(addr) == val && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
}

func wake(addr *uint32, n int) int { return 0 }

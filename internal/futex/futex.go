// Package futex waits and wakes on 32-bit words in shared memory. On Linux it
// uses non-private futexes, which work across processes mapping the same
// file; elsewhere Wait polls the word with short sleeps.
package futex

import "time"

// Wait blocks while *addr == val, for at most timeout. It may return early
// (spuriously); callers re-check their condition.
func Wait(addr *uint32, val uint32, timeout time.Duration) { wait(addr, val, timeout) }

// Wake wakes up to n waiters on addr and returns how many it woke (always 0
// on systems without futexes, where waiters poll).
func Wake(addr *uint32, n int) int { return wake(addr, n) }

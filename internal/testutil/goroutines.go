package testutil

import (
	"runtime"
	"testing"
	"time"
)

// CheckGoroutines records how many goroutines run now and, when the test
// and its other cleanups are done, fails it if more are still running a few
// seconds later (a stand-in for go.uber.org/goleak). Call it first in a test
// that starts goroutines or children, so that its cleanup runs last. It
// cannot be used in parallel tests.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		n := runtime.NumGoroutine()
		for n > base && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		if n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines left running (%d before the test):\n%s", n-base, base, buf)
		}
	})
}

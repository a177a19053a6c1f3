//go:build mpqhooks

package proc

import (
	"os"
	"strings"
	"sync"
	"syscall"
)

// Test hooks, in builds with the tag mpqhooks only: release builds pay
// nothing for them.

// poolHookAt is the point at which a pool worker kills itself, and the
// marker file that makes it the only one: MPQ_POOL_HOOK=point:marker.
var poolHookAt = sync.OnceValues(func() (string, string) {
	point, marker, _ := strings.Cut(os.Getenv("MPQ_POOL_HOOK"), ":")
	return point, marker
})

// poolHook makes the first worker of the test's pools to reach point (the
// one that creates the marker file) die of SIGKILL there.
func poolHook(point string) {
	at, marker := poolHookAt()
	if at != point || marker == "" {
		return
	}
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	f.Close()
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

//go:build mpqhooks

package mpq_test

import (
	"sync/atomic"

	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/testutil"
)

// stopAt sets ring.TestHook to stop this process for good, after saying
// "stuck", in call number after+1 of the hook at point; after < 0 means
// never.
func stopAt(point string, after int) {
	if after < 0 {
		return
	}
	var calls atomic.Int64
	ring.TestHook = func(p string) {
		if p == point && calls.Add(1) > int64(after) {
			testutil.Say("stuck")
			testutil.BlockForever()
		}
	}
}

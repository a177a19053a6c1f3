//go:build !mpqhooks

package mpq_test

import "fmt"

// stopAt stops this process at a hook of the ring, which this build (without
// the tag mpqhooks) does not have: asked to (after >= 0), it panics, so that
// the test that asked fails rather than wait for a "stuck" that never comes.
func stopAt(point string, after int) {
	if after >= 0 {
		panic(fmt.Sprintf("stopAt(%q, %d): the ring's test hooks exist only in builds with the tag mpqhooks", point, after))
	}
}

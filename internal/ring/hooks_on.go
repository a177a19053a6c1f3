//go:build mpqhooks

package ring

// TestHook, if set, is called at the points named by the Hook constants.
// Tests use it to stop a process at an exact point and kill it there. It
// must be set before any queue is used. It exists only in builds with the
// tag mpqhooks.
var TestHook func(point string)

// hooked reports whether a test has set TestHook.
func hooked() bool { return TestHook != nil }

// hook calls TestHook at point, if set.
func hook(point string) {
	if TestHook != nil {
		TestHook(point)
	}
}

//go:build !mpqhooks

package ring

// testHooks reports whether TestHook exists in this build: whether tests
// may stop a simulated process inside an operation.
const testHooks = false

// setTestHook does nothing in a build without the hooks: no hook fires.
func setTestHook(func(point string)) (restore func()) { return func() {} }

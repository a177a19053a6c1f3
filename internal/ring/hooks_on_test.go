//go:build mpqhooks

package ring

// testHooks reports whether TestHook exists in this build: whether tests
// may stop a simulated process inside an operation.
const testHooks = true

// setTestHook sets TestHook to f and returns the function that restores it.
func setTestHook(f func(point string)) (restore func()) {
	prev := TestHook
	TestHook = f
	return func() { TestHook = prev }
}

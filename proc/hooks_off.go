//go:build !mpqhooks

package proc

// poolHook is a test hook (see hooks_on.go); without the tag mpqhooks it
// does nothing.
func poolHook(string) {}

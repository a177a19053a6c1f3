//go:build mpqhooks

package mpq

import "os"

// Test hooks, in builds with the tag mpqhooks only (see internal/ring's
// hooks.go): release builds pay nothing for them.

// inspectMapped, if set (by tests), runs once Inspect has mapped the file.
var inspectMapped func(f *os.File)

// hookInspectMapped calls inspectMapped, if set.
func hookInspectMapped(f *os.File) {
	if inspectMapped != nil {
		inspectMapped(f)
	}
}

//go:build !mpqhooks

package mpq

import (
	"os"
	"time"
)

// hookInspectMapped does nothing in a build without the tag mpqhooks.
func hookInspectMapped(*os.File) {}

// sliceOf is d in a build without the tag mpqhooks.
func sliceOf(d time.Duration) time.Duration { return d }

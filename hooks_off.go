//go:build !mpqhooks

package mpq

import "os"

// hookInspectMapped does nothing in a build without the tag mpqhooks.
func hookInspectMapped(*os.File) {}

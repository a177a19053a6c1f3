//go:build unix && !linux

package mpq

import (
	"errors"
	"fmt"
	"os"

	"github.com/mpq-go/mpq/internal/ring"
)

// lockFiles says whether new named queues keep their locks in a lock file
// (see lockfile.go): not here, where OpenFile could not find the lock file
// of a descriptor handed to it. The locks stay in the queue file.
const lockFiles = false

// fdPath is the path of the queue file open as f: unknown here.
func fdPath(f *os.File) (string, error) {
	return "", fmt.Errorf("mpq: open queue file %s: %w: this system cannot find the lock file of a named queue's descriptor: open the queue by name", f.Name(), errors.ErrUnsupported)
}

// unlocked is never needed here: there are no lock files.
func unlocked(*os.File) bool { return false }

// mayUse is never needed here: there are no lock files.
func mayUse(ring.Attachment, uint64) bool { return true }

package mpq

import (
	"fmt"
	"os"
	"strings"
)

// lockFiles says whether new named queues keep their locks in a lock file
// (see lockfile.go): on Linux, where OpenFile finds a descriptor's path.
const lockFiles = true

// fdPath is the path of the queue file open as f.
func fdPath(f *os.File) (string, error) {
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "", fmt.Errorf("mpq: find the path of queue file %s: %w", f.Name(), err)
	}
	if strings.HasSuffix(p, " (deleted)") || !strings.HasPrefix(p, "/") {
		return "", errRemoved
	}
	return p, nil
}

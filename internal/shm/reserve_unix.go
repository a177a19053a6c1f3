//go:build unix && !linux && !darwin && !freebsd

package shm

import (
	"errors"
	"os"
)

// On the other Unix systems Reserve writes zeros, Back leaves a sparse file
// as it is, and StatFS knows nothing of the file system.

func allocate(f *os.File, size int64) error { return errors.ErrUnsupported }
func checkMemory(s space) error             { return nil }
func StatFS(dir string) (FS, error)         { return FS{Dir: dir}, errors.ErrUnsupported }
func fileFS(f *os.File, dir string) FS      { return FS{Dir: dir} }
func addrSpace() string                     { return "unknown" }

//go:build darwin || freebsd

package shm

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// allocate has no call here that allocates without writing (macOS's
// F_PREALLOCATE does not promise the blocks to a later write of a mapping):
// Reserve writes zeros instead, and Back leaves a sparse file as it is.
func allocate(f *os.File, size int64) error { return errors.ErrUnsupported }

// checkMemory does nothing: this system has no memory cgroups.
func checkMemory(s space) error { return nil }

// StatFS describes the file system holding dir.
func StatFS(dir string) (FS, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return FS{Dir: dir}, err
	}
	return fsOf(dir, &st), nil
}

func fsOf(dir string, st *unix.Statfs_t) FS {
	return FS{
		Dir: dir, Mount: cstring(st.Mntonname[:]), Type: cstring(st.Fstypename[:]),
		Size: int64(st.Blocks) * int64(st.Bsize), Free: int64(st.Bavail) * int64(st.Bsize),
	}
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// fileFS describes the file system of f, a file in dir.
func fileFS(f *os.File, dir string) FS {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil {
		return FS{Dir: dir}
	}
	return fsOf(dir, &st)
}

//go:build linux

package shm

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// dirFlags open a directory to resolve names in, without needing the
// right to list it.
const dirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC

// step looks name up in the directory dirfd without following it: one
// O_PATH open, so that what is checked is what is used.
func step(dirfd int, name string) (node, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return node{}, err
	}
	n := node{fd: fd}
	if err := unix.Fstat(fd, &n.st); err != nil {
		unix.Close(fd)
		return node{}, err
	}
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return n, nil
	case unix.S_IFLNK:
		defer unix.Close(fd)
		buf := make([]byte, unix.PathMax)
		k, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return node{}, err
		}
		if k == 0 {
			return node{}, unix.ENOENT
		}
		n.fd, n.link = -1, string(buf[:k])
		return n, nil
	}
	unix.Close(fd)
	return node{}, unix.ENOTDIR
}

// At returns a path that names name in d whatever happens to d's path
// meanwhile, for calls that take only a path (bind(2) of a socket):
// through d's descriptor in /proc/self/fd.
func (d *Dir) At(name string) string {
	return "/proc/self/fd/" + strconv.Itoa(d.fd) + "/" + name
}

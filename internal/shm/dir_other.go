//go:build unix && !linux

package shm

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

// dirFlags open a directory to resolve names in. Without O_PATH that
// takes the right to read it.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC

// step looks name up in the directory dirfd without following it. A
// directory is checked on the descriptor opened; a symbolic link is read,
// then looked at again to make sure the link read is the one checked.
func step(dirfd int, name string) (node, error) {
	for range 10 {
		var n node
		if err := unix.Fstatat(dirfd, name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return node{}, err
		}
		switch n.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			fd, err := unix.Openat(dirfd, name, dirFlags|unix.O_NOFOLLOW, 0)
			if err == unix.ELOOP || err == unix.EMLINK || err == unix.ENOTDIR {
				continue // replaced meanwhile: look again
			}
			if err != nil {
				return node{}, err
			}
			if err := unix.Fstat(fd, &n.st); err != nil {
				unix.Close(fd)
				return node{}, err
			}
			n.fd = fd
			return n, nil
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			k, err := unix.Readlinkat(dirfd, name, buf)
			if err != nil {
				return node{}, err
			}
			var again unix.Stat_t
			if err := unix.Fstatat(dirfd, name, &again, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return node{}, err
			}
			if again.Ino != n.st.Ino || again.Dev != n.st.Dev || again.Uid != n.st.Uid || again.Mode != n.st.Mode {
				continue
			}
			if k == 0 {
				return node{}, unix.ENOENT
			}
			n.fd, n.link = -1, string(buf[:k])
			return n, nil
		}
		return node{}, unix.ENOTDIR
	}
	return node{}, unix.EAGAIN
}

// At returns a path that names name in d, for calls that take only a
// path (bind(2) of a socket): here, with no /proc, d's path, which may
// have changed since d was checked.
func (d *Dir) At(name string) string { return filepath.Join(d.path, name) }

//go:build linux

package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// anonymous makes an unnamed file in memory (a memfd) named for label (see
// MemfdName), and returns with it where it lives for error messages:
// Memory.
func anonymous(label string) (*os.File, string, error) {
	name := MemfdName(label)
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, "", Explain("memfd_create", err)
	}
	return os.NewFile(uintptr(fd), "memfd:"+name), Memory, nil
}

// LabelOf returns the label of the anonymous queue file f, as its memfd's
// name holds it (see MemfdName); "" if it has none, or f is no memfd that
// Anonymous made.
func LabelOf(f *os.File) string {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return ""
	}
	label, _ := MemfdLabel(link)
	return label
}

// sealSize forbids changing the size of a memfd, so that a process it is
// handed to cannot shrink it under the mapping of another.
func sealSize(f *os.File) error {
	_, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)
	return err
}

// CannotFault reports whether no mapping of f can fault: f is a memfd (on
// the kernel's internal tmpfs, which has no size limit, not hugetlbfs) that
// nobody can shrink. Its pages can still be punched out, but touching one
// then allocates another (or, out of memory, wakes the OOM killer, as any
// allocation does): it is never a SIGBUS.
func CannotFault(f *os.File) bool {
	var st unix.Statfs_t
	return SizeSealed(f) && unix.Fstatfs(int(f.Fd()), &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// SizeSealed reports whether f is a memfd whose size nobody can change.
func SizeSealed(f *os.File) bool {
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	return err == nil && seals&unix.F_SEAL_SHRINK != 0
}

// Sync flushes the file's data, and the metadata needed to read it back, to
// its storage device.
func Sync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// OnDisk reports whether dir is on a filesystem that keeps files across a
// reboot (not tmpfs or ramfs).
func OnDisk(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, err
	}
	return st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC, nil
}

// unnamed makes a file in d that has no name until link gives it one
// (O_TMPFILE), or fails with errors.ErrUnsupported where the file system
// (or /proc, which linking it takes) does not allow that.
func unnamed(d *Dir, mode os.FileMode) (*os.File, error) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return nil, errors.ErrUnsupported
	}
	fd, err := unix.Openat(d.fd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(mode.Perm()))
	switch err {
	case nil:
		return os.NewFile(uintptr(fd), filepath.Join(d.path, "(unnamed)")), nil
	case unix.EOPNOTSUPP, unix.EISDIR, unix.EINVAL:
		return nil, errors.ErrUnsupported
	}
	return nil, &fs.PathError{Op: "create", Path: d.path, Err: err}
}

// link gives f, made by unnamed (tmp is "") or under the name tmp in d,
// the name base in d; it fails with an error wrapping fs.ErrExist if base
// exists.
func link(f *os.File, tmp string, d *Dir, base string) error {
	var err error
	if tmp != "" {
		err = unix.Linkat(d.fd, tmp, d.fd, base, 0)
	} else {
		err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), d.fd, base, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: filepath.Join(d.path, base), Err: err}
	}
	return nil
}

// SyncDir flushes dir, so that a name just linked into it survives a crash.
func SyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Explain("open directory "+dir, err)
	}
	defer unix.Close(fd)
	for {
		err := unix.Fsync(fd)
		if err != unix.EINTR {
			return err
		}
	}
}

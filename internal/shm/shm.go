// Package shm finds, creates, opens and maps queue files.
package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Ext is the file name extension of a queue file.
const Ext = ".mpq"

// MaxNameLen is the longest queue name accepted, in bytes.
const MaxNameLen = 200

// ErrInvalidName is returned for a name that could not be a single file in
// the queue directory.
var ErrInvalidName = errors.New("mpq: invalid queue name")

// CheckName reports why name is not a valid queue name, or nil.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidName, len(name), MaxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: %q contains '/' or NUL", ErrInvalidName, name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("%w: %q contains '..'", ErrInvalidName, name)
	case name[0] == '.':
		return fmt.Errorf("%w: %q starts with '.'", ErrInvalidName, name)
	}
	return nil
}

// Path joins dir and a checked name, and refuses any result outside dir.
func Path(dir, name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+Ext)
	if filepath.Dir(p) != filepath.Clean(dir) {
		return "", fmt.Errorf("%w: %q leaves the queue directory", ErrInvalidName, name)
	}
	return p, nil
}

// DefaultDir is the per-user queue directory: $XDG_RUNTIME_DIR/mpq if that
// variable names a directory, else /dev/shm/mpq-UID, else TMPDIR/mpq-UID.
func DefaultDir() string {
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		if fi, err := os.Stat(x); err == nil && fi.IsDir() {
			return filepath.Join(x, "mpq")
		}
	}
	base := "/dev/shm"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		base = os.TempDir()
	}
	return filepath.Join(base, fmt.Sprintf("mpq-%d", os.Getuid()))
}

// EnsureDir creates dir (mode 0700) and its missing parents, walking the
// path as [OpenDir] does: a directory that another user could redirect or
// fill gives an error wrapping ErrUnsafeDir. When private is set (the
// default directory, which lives in a shared place such as /dev/shm) an
// existing dir must also pass CheckPrivate. It returns undo, which removes
// the directories it made if they are still empty: a call that fails
// after EnsureDir leaves no directory behind.
//
// Another call may use a directory this one made before undo removes it
// (an Open of another queue there): it then finds the directory gone, and
// should call EnsureDir again.
func EnsureDir(dir string, private bool) (undo func(), err error) {
	d, made, err := chase(dir, true)
	undo = func() {
		for i := len(made) - 1; i >= 0; i-- {
			if removeDir(made[i]) != nil {
				return
			}
		}
	}
	if err != nil {
		undo()
		if errors.Is(err, ErrUnsafeDir) {
			return nil, err
		}
		return nil, Explain("make queue directory "+dir, err)
	}
	d.Close()
	if private {
		if err := CheckPrivate(dir); err != nil {
			undo()
			return nil, err
		}
	}
	return undo, nil
}

// removeDir removes the empty directory p, found as OpenDir finds it.
func removeDir(p string) error {
	d, err := OpenDir(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Unlinkat(d.fd, filepath.Base(p), unix.AT_REMOVEDIR)
}

// CheckPrivate returns an error wrapping ErrUnsafeDir unless dir is a real
// directory (not a symbolic link) owned by this user with no permissions
// for others. A missing dir passes: opening anything in it will fail.
func CheckPrivate(dir string) error {
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mpq: queue directory %s: %w", dir, err)
	}
	what := ""
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		what = "a symbolic link owned by " + who(st.Uid)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		what = "not a directory"
	case int(st.Uid) != os.Getuid():
		what = fmt.Sprintf("a directory of %s", who(st.Uid))
	case st.Mode&0o077 != 0:
		what = fmt.Sprintf("open to others (mode %04o)", st.Mode&0o7777)
	default:
		return nil
	}
	return &unsafeDirError{dir, fmt.Sprintf("the default queue directory must be a directory of this user, %s, closed to others (mode 0700), and it is %s: remove it (mpq makes it again), or set the Dir option (mpq --dir) to another directory", who(uint32(os.Getuid())), what)}
}

// ErrNotRegular is returned by OpenFile for a path that is not a regular
// file (a directory, a FIFO, a device).
var ErrNotRegular = errors.New("not a regular file")

// OpenFile opens an existing queue file for reading and writing, never
// following a symbolic link (ErrSymlink), never blocking on a FIFO, and
// finding its directory as [OpenDir] does.
func OpenFile(path string) (*os.File, error) {
	return openFile(path, (*Dir).OpenFile)
}

// OpenReadOnly opens an existing queue file for reading, as OpenFile.
func OpenReadOnly(path string) (*os.File, error) {
	return openFile(path, (*Dir).OpenReadOnly)
}

func openFile(path string, open func(*Dir, string) (*os.File, error)) (*os.File, error) {
	dir, base := filepath.Split(path)
	d, err := OpenDir(dir)
	if err != nil {
		if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.EACCES) {
			err = Explain("open queue directory "+filepath.Clean(dir), err)
		}
		return nil, err
	}
	defer d.Close()
	return open(d, base)
}

// Remove removes the files names from the directory dir (found as
// [OpenDir] finds it): a symbolic link itself, never its target. The
// first name must exist (else an error wrapping fs.ErrNotExist); the
// others are removed if they do.
func Remove(dir string, names ...string) error {
	d, err := OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.RemoveFiles(names...)
}

// Create makes a queue file at path atomically: it writes a complete file
// without a name (or under a temporary one), runs init on it and its
// mapping, then links it into place, all in the directory found as
// [OpenDir] finds it. It fails with an error wrapping fs.ErrExist if path
// exists (even as a symbolic link, which it never follows). The returned
// file and mapping are the new queue's.
func Create(path string, mode os.FileMode, size int64, init func(f *os.File, mem []byte) error) (*os.File, []byte, error) {
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	d, err := OpenDir(dir)
	if err != nil {
		if errors.Is(err, ErrUnsafeDir) {
			return nil, nil, err
		}
		return nil, nil, Explain("create queue file in "+dir, err)
	}
	defer d.Close()
	// An unnamed file where the system has them: a process killed while
	// it reserves a large queue then leaves nothing behind.
	f, err := unnamed(d, mode)
	tmp := ""
	if errors.Is(err, errors.ErrUnsupported) {
		tmp = fmt.Sprintf(".%s.%d.%x.tmp", base, os.Getpid(), rand.Uint64())
		var fd int
		fd, err = unix.Openat(d.fd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
		if err == nil {
			f = os.NewFile(uintptr(fd), filepath.Join(dir, tmp))
		} else {
			err = &fs.PathError{Op: "create", Path: filepath.Join(dir, tmp), Err: err}
		}
	}
	if err != nil {
		return nil, nil, Explain("create queue file in "+dir, err)
	}
	if tmp != "" {
		defer unix.Unlinkat(d.fd, tmp, 0)
	}
	mem, err := setup(f, mode, size, dir, init)
	if err == nil {
		if err = link(f, tmp, d, base); err != nil {
			Unmap(mem)
			if errors.Is(err, fs.ErrExist) {
				err = &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
			} else {
				err = Explain("link queue file "+path, err)
			}
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, mem, nil
}

// setup sizes f, a new queue file in dir, reserves its storage, maps it and
// runs init on the mapping.
func setup(f *os.File, mode os.FileMode, size int64, dir string, init func(*os.File, []byte) error) ([]byte, error) {
	if err := f.Chmod(mode.Perm()); err != nil { // exact bits, whatever the umask
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		return nil, Explain(fmt.Sprintf("size a queue file of %s in %s", Bytes(size), dir), err)
	}
	if err := Reserve(f, size, dir); err != nil {
		return nil, err
	}
	mem, err := Map(f, size)
	if err != nil {
		return nil, err
	}
	if err := init(f, mem); err != nil {
		Unmap(mem)
		return nil, err
	}
	return mem, nil
}

// Anonymous creates an unnamed queue file of size bytes (a memfd on Linux,
// named for label: see MemfdName) and runs init on its mapping.
func Anonymous(label string, size int64, init func(mem []byte) error) (*os.File, []byte, error) {
	f, dir, err := anonymous(label)
	if err != nil {
		return nil, nil, err
	}
	mem, err := setup(f, 0o600, size, dir, func(_ *os.File, mem []byte) error { return init(mem) })
	if err == nil {
		if err = sealSize(f); err != nil {
			Unmap(mem)
			err = fmt.Errorf("mpq: seal anonymous queue file: %w", err)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, mem, nil
}

// Size returns the size of an open file.
func Size(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", f.Name())
	}
	return fi.Size(), nil
}

// Map maps size bytes of f shared, readable and writable.
func Map(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || size != int64(int(size)) {
		return nil, fmt.Errorf("mpq: cannot map %d bytes", size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, Explain(fmt.Sprintf("map a queue file of %s", Bytes(size)), err)
	}
	return mem, nil
}

// Unmap releases a mapping made by Map.
func Unmap(mem []byte) error { return unix.Munmap(mem) }

// Describe says what kind of file f is, for an error message: "an empty
// regular file", "a regular file of 12 bytes", "a pipe", "a character
// device".
func Describe(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Sprintf("a file that cannot be examined (%v)", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Size == 0 {
			return "an empty regular file"
		}
		return fmt.Sprintf("a regular file of %d bytes", st.Size)
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "not a regular file"
}

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

// EnsureDir creates dir (mode 0700) and its missing parents. When private is
// set (the default directory, which lives in a shared place such as
// /dev/shm) an existing dir must be a real directory owned by this user and
// closed to others, so that nobody else can plant or read queues in it. It
// returns undo, which removes the directories it made if they are still
// empty: a call that fails after EnsureDir leaves no directory behind.
//
// Another call may use a directory this one made before undo removes it
// (an Open of another queue there): it then finds the directory gone, and
// should call EnsureDir again.
func EnsureDir(dir string, private bool) (undo func(), err error) {
	var missing []string // deepest first
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			break
		}
		missing = append(missing, p)
	}
	var made []string // deepest first: only those this call made
	undo = func() {
		for _, p := range made {
			if os.Remove(p) != nil {
				return
			}
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o700)
		if err == nil {
			made = append([]string{missing[i]}, made...)
		} else if !errors.Is(err, fs.ErrExist) {
			undo()
			return nil, Explain("make queue directory "+dir, err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		undo()
		if err == nil {
			err = &fs.PathError{Op: "mkdir", Path: dir, Err: unix.ENOTDIR}
		}
		return nil, Explain("make queue directory "+dir, err)
	}
	if private {
		if err := CheckPrivate(dir); err != nil {
			undo()
			return nil, err
		}
	}
	return undo, nil
}

// CheckPrivate returns an error unless dir is a real directory (not a
// symbolic link) owned by this user with no permissions for others. A
// missing dir passes: opening anything in it will fail.
func CheckPrivate(dir string) error {
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mpq: queue directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o077 != 0 {
		return fmt.Errorf("mpq: queue directory %s is not a private directory of this user (want mode 0700, owner uid %d)", dir, os.Getuid())
	}
	return nil
}

// ErrNotRegular is returned by OpenFile for a path that is not a regular
// file (a directory, a FIFO, a device).
var ErrNotRegular = errors.New("not a regular file")

// OpenFile opens an existing queue file for reading and writing, never
// following a symbolic link and never blocking on a FIFO.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			err = &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
		}
		if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			err = Explain("open queue file "+path, err)
		}
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	return f, nil
}

// Create makes a queue file at path atomically: it writes a complete file
// without a name (or under a temporary one), runs init on it and its
// mapping, then links it into place. It fails with an error wrapping
// fs.ErrExist if path exists. The returned file and mapping are the new
// queue's.
func Create(path string, mode os.FileMode, size int64, init func(f *os.File, mem []byte) error) (*os.File, []byte, error) {
	dir, base := filepath.Split(path)
	// An unnamed file where the system has them: a process killed while
	// it reserves a large queue then leaves nothing behind.
	f, err := unnamed(filepath.Clean(dir), mode)
	tmp := ""
	if errors.Is(err, errors.ErrUnsupported) {
		tmp = filepath.Join(dir, fmt.Sprintf(".%s.%d.%x.tmp", base, os.Getpid(), rand.Uint64()))
		f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, mode.Perm())
	}
	if err != nil {
		return nil, nil, Explain("create queue file in "+filepath.Clean(dir), err)
	}
	if tmp != "" {
		defer os.Remove(tmp)
	}
	mem, err := setup(f, mode, size, filepath.Clean(dir), init)
	if err == nil {
		if err = link(f, tmp, path); err != nil {
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

// Anonymous creates an unnamed queue file of size bytes (a memfd on Linux)
// and runs init on its mapping.
func Anonymous(size int64, init func(mem []byte) error) (*os.File, []byte, error) {
	f, dir, err := anonymous()
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

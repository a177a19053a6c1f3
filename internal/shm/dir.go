package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnsafeDir is returned for a queue directory that another user could
// redirect or fill: one reached through a symbolic link of another user,
// one owned by another user, or one on the way that every user may write
// to without the sticky bit. It matches fs.ErrPermission too.
var ErrUnsafeDir = errors.New("mpq: unsafe queue directory")

// ErrSymlink is returned by OpenFile for a queue file that is a symbolic
// link: mpq never follows one. It matches ErrNotRegular too.
var ErrSymlink = fmt.Errorf("%w: a symbolic link, which mpq never follows", ErrNotRegular)

// An unsafeDirError says why dir is refused; it matches ErrUnsafeDir and
// fs.ErrPermission.
type unsafeDirError struct {
	dir, why string
}

func (e *unsafeDirError) Error() string {
	return fmt.Sprintf("mpq: unsafe queue directory %s: %s", e.dir, e.why)
}

func (e *unsafeDirError) Is(target error) bool {
	return target == ErrUnsafeDir || target == fs.ErrPermission
}

// maxSymlinks bounds the symbolic links followed in one path, as the
// kernel's own (40 on Linux).
const maxSymlinks = 40

// A Dir is a queue directory opened by [OpenDir], component by component,
// never following a symbolic link of another user: the files opened,
// made and removed through it are in that directory whatever is renamed
// or replaced meanwhile on the path that led there.
type Dir struct {
	fd   int    // O_PATH on Linux; O_RDONLY elsewhere
	path string // the path asked for, for messages
}

// OpenDir opens the queue directory dir (relative to the working
// directory unless absolute), as a path resolver does, but one component
// at a time with O_NOFOLLOW, checking each:
//   - a symbolic link is followed only if it is owned by this user
//     (the effective uid) or root;
//   - a directory on the way (or dir itself) that every user may write to
//     must have the sticky bit (as /tmp), or anyone could replace what is
//     in it;
//   - dir itself must be owned by this user or root.
//
// Any other directory on the way may belong to anyone: its owner can move
// what the path leads to, but only to a directory that passes these
// checks. A refused dir gives an error wrapping ErrUnsafeDir (and
// fs.ErrPermission) that names the component, its owner and the fix; a
// missing one, an error wrapping fs.ErrNotExist.
func OpenDir(dir string) (*Dir, error) {
	d, _, err := chase(dir, false)
	return d, err
}

// Close closes the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// Path is the path d was opened by.
func (d *Dir) Path() string { return d.path }

// chase opens dir as OpenDir does; with create set it makes the missing
// directories (mode 0700) and returns them, shallowest first.
func chase(dir string, create bool) (d *Dir, made []string, err error) {
	dir = filepath.Clean(dir)
	at, start := ".", "."
	if filepath.IsAbs(dir) {
		at, start = "/", "/"
	}
	fd, err := unix.Open(start, dirFlags, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: start, Err: err}
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, nil, &fs.PathError{Op: "stat", Path: start, Err: err}
	}
	if err := checkOnTheWay(dir, at, &st); err != nil {
		return nil, nil, err
	}
	rest := split(dir)
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		next := filepath.Join(at, name)
		n, err := step(fd, name)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, 0o700); err == nil {
				made = append(made, next)
			}
			if err == nil || err == unix.EEXIST {
				n, err = step(fd, name)
			}
		}
		if err != nil {
			return nil, made, &fs.PathError{Op: "open", Path: next, Err: err}
		}
		if n.link != "" {
			if !trusted(n.st.Uid) {
				return nil, made, &unsafeDirError{dir, fmt.Sprintf("%s a symbolic link (to %s) owned by %s, who can point it anywhere; mpq follows only symbolic links owned by root or by this user, %s: give a path without it, or remove it", subject(dir, next), n.link, who(n.st.Uid), who(uint32(os.Geteuid())))}
			}
			if links++; links > maxSymlinks {
				return nil, made, &fs.PathError{Op: "open", Path: dir, Err: unix.ELOOP}
			}
			if filepath.IsAbs(n.link) {
				root, err := unix.Open("/", dirFlags, 0)
				if err != nil {
					return nil, made, &fs.PathError{Op: "open", Path: "/", Err: err}
				}
				unix.Close(fd)
				fd, at = root, "/"
				var st unix.Stat_t
				if err := unix.Fstat(fd, &st); err != nil {
					return nil, made, &fs.PathError{Op: "stat", Path: "/", Err: err}
				}
				if err := checkOnTheWay(dir, at, &st); err != nil {
					return nil, made, err
				}
			}
			rest = append(split(n.link), rest...)
			continue
		}
		unix.Close(fd)
		fd, at = n.fd, next
		if err := checkOnTheWay(dir, at, &n.st); err != nil {
			return nil, made, err
		}
		st = n.st
	}
	if !trusted(st.Uid) {
		where := "it is"
		if at != dir {
			where = fmt.Sprintf("%s, where it leads, is", at)
		}
		return nil, made, &unsafeDirError{dir, fmt.Sprintf("%s a directory of %s, who can replace or remove the queues in it; a queue directory must be owned by root or by this user, %s: use a directory of your own, or chown it", where, who(st.Uid), who(uint32(os.Geteuid())))}
	}
	return &Dir{fd: fd, path: dir}, made, nil
}

// split is the components of a path, without empty ones and ".".
func split(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return parts
}

// A node is what step found: a directory (opened as fd), or a symbolic
// link (link is its target).
type node struct {
	fd   int
	link string
	st   unix.Stat_t
}

// checkOnTheWay refuses a directory at (on the way to dir, or dir itself)
// that every user may write to without the sticky bit.
func checkOnTheWay(dir, at string, st *unix.Stat_t) error {
	if st.Mode&0o002 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return &unsafeDirError{dir, fmt.Sprintf("%s writable by every user without the sticky bit (owned by %s, mode %04o), so anyone can replace what is in it: chmod +t %s (as /tmp), or chmod o-w %s", subject(dir, at), who(st.Uid), st.Mode&0o7777, at, at)}
	}
	return nil
}

// subject is how a message about component at of dir begins: "it is"
// when at is dir, else "AT is".
func subject(dir, at string) string {
	if at == dir {
		return "it is"
	}
	return at + " is"
}

// trusted reports whether a file of uid may decide where a path of this
// process leads: root, and the effective user.
func trusted(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// who names a user for a message: "nobody (uid 65534)".
func who(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return fmt.Sprintf("%s (uid %s)", u.Username, id)
	}
	return "uid " + id
}

// OpenFile opens the queue file name in d for reading and writing, never
// following a symbolic link (ErrSymlink) and never blocking on a FIFO.
func (d *Dir) OpenFile(name string) (*os.File, error) {
	return d.open(name, unix.O_RDWR)
}

// OpenReadOnly opens the queue file name in d for reading, as OpenFile.
func (d *Dir) OpenReadOnly(name string) (*os.File, error) {
	return d.open(name, unix.O_RDONLY)
}

func (d *Dir) open(name string, mode int) (*os.File, error) {
	path := filepath.Join(d.path, name)
	fd, err := unix.Openat(d.fd, name, mode|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if d.isSymlink(name) {
			return nil, &fs.PathError{Op: "open", Path: path, Err: d.symlinkError(name)}
		}
		if err == unix.EISDIR {
			return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
		}
		perr := &fs.PathError{Op: "open", Path: path, Err: err}
		switch err {
		case unix.EMFILE, unix.ENFILE, unix.EROFS, unix.EACCES, unix.EPERM:
			return nil, Explain("open queue file "+path, perr)
		}
		return nil, perr
	}
	f := os.NewFile(uintptr(fd), path)
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	return f, nil
}

// isSymlink reports whether name in d is a symbolic link.
func (d *Dir) isSymlink(name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// symlinkError says that name in d is a symbolic link, and to where.
func (d *Dir) symlinkError(name string) error {
	buf := make([]byte, unix.PathMax)
	e := &symlinkError{}
	if n, err := unix.Readlinkat(d.fd, name, buf); err == nil {
		e.to = string(buf[:n])
	}
	return e
}

// A symlinkError is ErrSymlink for a link to a known target.
type symlinkError struct{ to string }

func (e *symlinkError) Error() string {
	to := ""
	if e.to != "" {
		to = " (to " + e.to + ")"
	}
	return "a symbolic link" + to + ", which mpq never follows; removing the queue (mpq rm) removes the link, not its target"
}

func (e *symlinkError) Is(target error) bool { return target == ErrSymlink || target == ErrNotRegular }

// Holds reports whether name in d is the file f.
func (d *Dir) Holds(name string, f *os.File) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil &&
		unix.Fstatat(d.fd, name, &b, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		a.Dev == b.Dev && a.Ino == b.Ino
}

// Remove removes name from d: a symbolic link itself, never its target.
// A missing name gives an error wrapping fs.ErrNotExist.
func (d *Dir) Remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: filepath.Join(d.path, name), Err: err}
	}
	return nil
}

// RemoveFiles removes names from d, as Remove: the first must exist
// (else an error wrapping fs.ErrNotExist), the others are removed if they
// do.
func (d *Dir) RemoveFiles(names ...string) error {
	for i, name := range names {
		if err := d.Remove(name); err != nil && (i == 0 || !errors.Is(err, fs.ErrNotExist)) {
			return err
		}
	}
	return nil
}

// ReadDir returns the entries of d, in directory order.
func (d *Dir) ReadDir() ([]fs.DirEntry, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.ReadDir(-1)
}

// OpenAt opens name in d with flags (O_NOFOLLOW and O_CLOEXEC are always
// added) and, if it creates it, permission bits perm: for files of a queue
// other than its queue file, which OpenFile and Create handle.
func (d *Dir) OpenAt(name string, flags int, perm os.FileMode) (*os.File, error) {
	fd, err := unix.Openat(d.fd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(d.path, name), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(d.path, name)), nil
}

// Stat fills st with the status of name in d, not following a symbolic
// link.
func (d *Dir) Stat(name string, st *unix.Stat_t) error {
	return unix.Fstatat(d.fd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// Link gives the file old in d the name new in d too, failing with an
// error wrapping fs.ErrExist if new exists: a file made under a temporary
// name appears under its own complete, or not at all.
func (d *Dir) Link(old, new string) error {
	if err := unix.Linkat(d.fd, old, d.fd, new, 0); err != nil {
		return &fs.PathError{Op: "link", Path: filepath.Join(d.path, new), Err: err}
	}
	return nil
}

// Chmod sets the permission bits of name in d, following no symbolic link
// at its end (one there gives an error).
func (d *Dir) Chmod(name string, mode os.FileMode) error {
	var st unix.Stat_t
	if err := d.Stat(name, &st); err != nil {
		return &fs.PathError{Op: "chmod", Path: filepath.Join(d.path, name), Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return &fs.PathError{Op: "chmod", Path: filepath.Join(d.path, name), Err: ErrSymlink}
	}
	if err := unix.Fchmodat(d.fd, name, uint32(mode.Perm()), 0); err != nil {
		return &fs.PathError{Op: "chmod", Path: filepath.Join(d.path, name), Err: err}
	}
	return nil
}

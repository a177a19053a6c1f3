package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A shared mapping whose pages the file system cannot supply kills the
// process that touches them with SIGBUS. So every queue file is reserved
// whole before it becomes visible (Reserve), and an existing one is backed
// when a process attaches to it (Back): a full file system then fails the
// call that makes or opens the queue, with ErrNoSpace, instead of a Put.

// FS describes the file system that holds a directory.
type FS struct {
	Dir   string // the directory asked about
	Mount string // where the file system is mounted ("" if unknown)
	Type  string // its type, such as tmpfs or ext4 ("" if unknown)
	Size  int64  // its size in bytes
	Free  int64  // bytes that this user may still allocate in it
}

// String describes fs for an error message: "tmpfs at /dev/shm".
func (fs FS) String() string {
	t := fs.Type
	if t == "" {
		t = "file system"
	}
	if fs.Mount == "" {
		return t
	}
	return t + " at " + fs.Mount
}

// Memory is the Dir of the FS of an anonymous queue (a memfd on Linux).
const Memory = "memory"

// Reserve allocates storage for the first size bytes of f, a new queue file
// in dir (Memory for an anonymous one) that no other process can reach yet.
// It fails with an error carrying ErrNoSpace that says where, how much was
// asked for, how much is free, and how to make room.
func Reserve(f *os.File, size int64, dir string) error {
	need := space{file: f, dir: dir, size: size, need: size}
	if err := checkMemory(need); err != nil {
		return err
	}
	err := allocate(f, size)
	if errors.Is(err, errors.ErrUnsupported) {
		// The file system cannot allocate without writing (or this system
		// has no call for it): write zeros, which no process can see yet.
		err = writeZeros(f, size)
	}
	if err != nil {
		// Some file systems (ext4) keep what a failed fallocate got: give
		// it back before saying how much is free.
		f.Truncate(0)
	}
	return need.failed(err)
}

// Back makes sure that every byte of f, an existing queue file of size bytes
// that other processes may be using, has storage: a file copied sparse, made
// by a version of mpq that did not reserve, or with a hole punched into it.
// Allocating never changes a byte of the file. A file system that cannot
// allocate without writing leaves f as it is.
func Back(f *os.File, size int64, dir string) error {
	_, allocated, err := Backing(f)
	if err != nil || allocated >= size {
		return err
	}
	need := space{file: f, dir: dir, size: size, need: size - allocated, existing: true}
	if err := checkMemory(need); err != nil {
		return err
	}
	err = allocate(f, size)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return need.failed(err)
}

// Backing returns the size of f and the bytes of storage allocated to it,
// as the blocks the file system reports for it: the file is backed if they
// are at least its size (a compressing file system may report fewer for a
// file that is backed).
func Backing(f *os.File) (size, allocated int64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, err
	}
	return st.Size, st.Blocks * 512, nil
}

// space is a request for the storage of a queue file: size bytes of file,
// of which need are still to be allocated; existing is set for a file that
// is already a queue (Back), not one being made (Reserve).
type space struct {
	file     *os.File
	dir      string
	size     int64
	need     int64
	existing bool
}

// failed explains err, a failure to allocate the storage.
func (s space) failed(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EDQUOT):
		return s.noSpace(err, fileFS(s.file, s.dir), "this user's disk quota there is used up",
			"free space of this user's there", "raise the quota", "set Options.Dir (mpq --dir) to another file system")
	case errors.Is(err, unix.ENOSPC):
		fs := fileFS(s.file, s.dir)
		reason := fmt.Sprintf("%s free of %s (if that is enough, the file system is out of inodes: df -i)", Bytes(fs.Free), Bytes(fs.Size))
		room := "make room in this file system"
		if fs.Type == "tmpfs" && filepath.Clean(fs.Mount) == "/dev/shm" {
			room += " (in a container, a larger /dev/shm: docker run --shm-size=1g, or shm_size in compose)"
		}
		return s.noSpace(err, fs, reason, room, "set Options.Dir (mpq --dir) to another file system")
	default:
		return Explain(fmt.Sprintf("reserve %s for a queue file in %s", Bytes(s.need), s.dir), err)
	}
}

// noSpace is the ErrNoSpace for the request, refused by fs for reason, with
// the fixes that apply (a smaller Capacity comes first for a new queue).
func (s space) noSpace(err error, fs FS, reason string, fixes ...string) error {
	where := fmt.Sprintf("in %s (%s)", fs.Dir, fs)
	if fs.Dir == Memory {
		where = "in memory"
	}
	var msg string
	if s.existing {
		msg = fmt.Sprintf("mpq: no space for the %s (%d bytes) of storage that the queue file of %s %s lacks", Bytes(s.need), s.need, Bytes(s.size), where)
	} else {
		msg = fmt.Sprintf("mpq: no space for a queue file of %s (%d bytes) %s", Bytes(s.size), s.size, where)
		fixes = append([]string{"use a smaller Capacity (mpq --capacity)"}, fixes...)
	}
	msg += ": " + reason + ": " + strings.Join(fixes, ", or ")
	return &LimitError{Kind: ErrNoSpace, Err: err, Msg: msg}
}

// writeZeros writes size zero bytes at the start of f.
func writeZeros(f *os.File, size int64) error {
	zeros := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; {
		n, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off)
		if err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// Bytes formats a byte count for people: 512 B, 64.0 KiB, 2.5 GiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

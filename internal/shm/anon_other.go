//go:build unix && !linux

package shm

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Without memfd, an anonymous queue is a temporary file removed at once: it
// lives on while descriptors to it are open. The label has nowhere to go.
// It returns the directory it was made in, for error messages.
func anonymous(label string) (*os.File, string, error) {
	f, err := os.CreateTemp("", ".mpq-anon-*")
	if err != nil {
		return nil, "", Explain("create an anonymous queue file in "+os.TempDir(), err)
	}
	os.Remove(f.Name())
	return f, os.TempDir(), nil
}

// LabelOf returns "": without memfd, an anonymous queue's file has no name
// to hold its label.
func LabelOf(f *os.File) string { return "" }

// sealSize does nothing: only memfds take seals.
func sealSize(f *os.File) error { return nil }

// SizeSealed reports true: without memfd there are no seals to check.
func SizeSealed(f *os.File) bool { return true }

// Sync flushes the file to its storage device.
func Sync(f *os.File) error { return f.Sync() }

// OnDisk reports whether dir keeps files across a reboot. Other systems
// have no portable test: every directory counts.
func OnDisk(dir string) (bool, error) { return true, nil }

// unnamed is not available here: Create uses a temporary name.
func unnamed(d *Dir, mode os.FileMode) (*os.File, error) { return nil, errors.ErrUnsupported }

// link gives f, made under the name tmp in d, the name base in d.
func link(f *os.File, tmp string, d *Dir, base string) error {
	if err := unix.Linkat(d.fd, tmp, d.fd, base, 0); err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: filepath.Join(d.path, base), Err: err}
	}
	return nil
}

// CannotFault reports false: without memfd seals, any queue file may be
// shrunk or punched under its mappings.
func CannotFault(f *os.File) bool { return false }

// SyncDir flushes dir, so that a name just linked into it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return Explain("open directory "+dir, err)
	}
	defer d.Close()
	return d.Sync()
}

//go:build unix && !linux

package shm

import (
	"fmt"
	"os"
)

// Without memfd, an anonymous queue is a temporary file removed at once: it
// lives on while descriptors to it are open.
func anonymous() (*os.File, error) {
	f, err := os.CreateTemp("", ".mpq-anon-*")
	if err != nil {
		return nil, fmt.Errorf("mpq: anonymous queue file: %w", err)
	}
	os.Remove(f.Name())
	return f, nil
}

// sealSize does nothing: only memfds take seals.
func sealSize(f *os.File) error { return nil }

// SizeSealed reports true: without memfd there are no seals to check.
func SizeSealed(f *os.File) bool { return true }

// Sync flushes the file to its storage device.
func Sync(f *os.File) error { return f.Sync() }

// OnDisk reports whether dir keeps files across a reboot. Other systems
// have no portable test: every directory counts.
func OnDisk(dir string) (bool, error) { return true, nil }

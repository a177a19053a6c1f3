//go:build linux

package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Tmpfs mounts a tmpfs of size bytes on a new temporary directory and
// returns the directory; the test's cleanup unmounts it. Where it cannot
// mount (not root, no mount namespace of its own) the test is skipped, or
// fails when CI=true: CI runs as root, where it must run.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		cannot(t, fmt.Sprintf("mount a tmpfs of %d bytes on %s: %v", size, dir, err))
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

// Ext4 makes an ext4 file system of size bytes in an image file, mounts it
// through a loop device on a new temporary directory and returns the
// directory; the test's cleanup unmounts it and frees the loop device.
// Skipped, or failed when CI=true, where that is not possible.
func Ext4(t testing.TB, size int64) string {
	t.Helper()
	// No reserved blocks, no lazy initialization: the free space the
	// test sees is the free space a user sees.
	return loopMount(t, "ext4", "e2fsprogs", size, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0")
}

// Btrfs mounts a new btrfs file system of size bytes, in an image file of
// the test's, on a new temporary directory and returns the directory.
// Skipped, or failed when CI=true, where that is impossible (no root, no
// mkfs.btrfs).
func Btrfs(t testing.TB, size int64) string {
	t.Helper()
	return loopMount(t, "btrfs", "btrfs-progs", size, "-q")
}

// loopMount makes a file system of type fs (its mkfs.FS from Debian's
// package pkg, run with args) in an image file of size bytes, mounts it on
// a new temporary directory, and returns the directory; the test's cleanup
// unmounts it.
func loopMount(t testing.TB, fs, pkg string, size int64, args ...string) string {
	t.Helper()
	base := t.TempDir()
	img, dir := filepath.Join(base, fs+".img"), filepath.Join(base, fs)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	mkfs, err := exec.LookPath("mkfs." + fs)
	if err != nil {
		cannot(t, fmt.Sprintf("make a %s file system: mkfs.%s not found (Debian package %s)", fs, fs, pkg))
	}
	if out, err := exec.Command(mkfs, append(args, img)...).CombinedOutput(); err != nil {
		cannot(t, fmt.Sprintf("mkfs.%s %s: %v\n%s", fs, img, err, out))
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		cannot(t, fmt.Sprintf("mount -o loop %s %s: %v\n%s", img, dir, err, out))
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

// ReadOnly mounts a read-only tmpfs on a new temporary directory and
// returns the directory. Skipped, or failed when CI=true, where that is
// not possible.
func ReadOnly(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "size=1m"); err != nil {
		cannot(t, fmt.Sprintf("mount a read-only tmpfs on %s: %v", dir, err))
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

func unmount(t testing.TB, dir string) {
	// A loop device is freed with its last unmount (mount -o loop sets
	// autoclear). Lazily: a child the test killed may still hold a file.
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		t.Errorf("unmount %s: %v", dir, err)
	}
}

package testutil

import (
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// AsUser runs the child as user uid and group gid, with no supplementary
// groups: a peer of another user, for the tests of what a stranger, a
// reader or a writer of another uid can do. Only root may start one (see
// [Nobody]). The child runs a copy of the test binary in a directory that
// every user can read, since the build's own is closed to others.
func AsUser(uid, gid int) Option {
	return func(c *config) {
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: false}
	}
}

// Nobody returns the uid and gid of the user nobody, for a peer of another
// user. A test that is not running as root cannot start one: it is
// skipped, or fails under CI (CI=true), which runs as root.
func Nobody(t testing.TB) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		cannot(t, "start a process as another user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("look up user nobody: %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("user nobody has uid %q, gid %q", u.Uid, u.Gid)
	}
	return uid, gid
}

// Public makes a directory that every user may use (mode 01777, as /tmp),
// removed when the test ends: a place where the test's root process and a
// peer of another user meet.
func Public(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent is closed to others.
	for p := filepath.Dir(dir); p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sharedBinary copies the test binary into a new directory of [Public]:
// the build's own directory is closed to other users.
func sharedBinary(t testing.TB) (string, error) {
	bin := filepath.Join(Public(t), filepath.Base(os.Args[0]))
	return bin, copyFile(os.Args[0], bin)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cannot skips the test for want of what it needs, or fails it under CI.
func cannot(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot %s; CI runs as root, where this test must run", why)
	}
	t.Skipf("cannot %s (run as root, as CI does)", why)
}

// Names lists the names in dir, sorted.
func Names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

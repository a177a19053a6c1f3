package main

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("plant", runPlant)
	// A helper runs its role here, before TestMain builds mpq: it runs as
	// nobody, who could not.
	testutil.RunHelper(nil)
}

// runPlant is nobody, in the public directory $PLANT_PUBLIC: it makes a
// directory "link" and replaces it by a symbolic link to $PLANT_TARGET (a
// directory of root's standing in for /etc), makes a directory "home" of
// its own, and plants a queue file "planted.mpq" that is a symbolic link
// to the target's passwd.
func runPlant() error {
	pub, target := os.Getenv("PLANT_PUBLIC"), os.Getenv("PLANT_TARGET")
	link := filepath.Join(pub, "link")
	if err := os.Mkdir(link, 0o755); err != nil {
		return err
	}
	if err := os.Remove(link); err != nil {
		return err
	}
	if err := os.Symlink(target, link); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(pub, "home"), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(filepath.Join(target, "passwd"), filepath.Join(pub, "planted.mpq")); err != nil {
		return err
	}
	testutil.Say("planted")
	return nil
}

// TestHelperProcess is where a helper started by testutil.Start would run
// its role, had init not run it already.
func TestHelperProcess(t *testing.T) { testutil.RunHelper(t) }

// TestUnsafeDir runs the real mpq, as root, with a --dir (or $MPQ_DIR)
// that nobody, a real process of another user, has redirected: every
// command refuses it, saying which component and whose, and makes nothing
// where it leads. rm removes a queue file that nobody made a symbolic
// link, leaving its target as it was; root's own directories and links
// still work.
func TestUnsafeDir(t *testing.T) {
	uid, gid := testutil.Nobody(t)
	pub, target := testutil.Public(t), t.TempDir()
	passwd := filepath.Join(target, "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := testutil.Start(t, "plant", testutil.AsUser(uid, gid),
		testutil.Env("PLANT_PUBLIC="+pub, "PLANT_TARGET="+target))
	c.Expect("planted", 10*time.Second)
	c.Succeed(10 * time.Second)
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(pub, "link"), &st); err != nil || int(st.Uid) != uid {
		t.Fatalf("nobody's link: owner %d, %v; want %d", st.Uid, err, uid)
	}

	mpq := func(env []string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(mpqBin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("mpq %s: %v", strings.Join(args, " "), err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	link, home := filepath.Join(pub, "link"), filepath.Join(pub, "home")
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--dir", link, "create", "passwd"}, "unsafe queue directory " + link + ": it is a symbolic link (to " + target + ") owned by nobody (uid "},
		{nil, []string{"--dir", link, "put", "passwd", "x"}, "unsafe queue directory " + link + ": it is a symbolic link"},
		{nil, []string{"--dir", filepath.Join(link, "sub"), "create", "q"}, ": " + link + " is a symbolic link"},
		{[]string{"MPQ_DIR=" + link}, []string{"put", "passwd", "x"}, "unsafe queue directory " + link + ": it is a symbolic link"},
		{nil, []string{"--dir", link, "stat", "passwd"}, "unsafe queue directory " + link + ": it is a symbolic link"},
		{nil, []string{"--dir", link, "ls"}, "unsafe queue directory " + link + ": it is a symbolic link"},
		{nil, []string{"--dir", link, "rm", "passwd"}, "unsafe queue directory " + link + ": it is a symbolic link"},
		{nil, []string{"--dir", link, "rm", "--force", "passwd"}, "unsafe queue directory " + link + ": it is a symbolic link"},
		{nil, []string{"--dir", home, "create", "q"}, "unsafe queue directory " + home + ": it is a directory of nobody (uid "},
	} {
		out, code := mpq(tc.env, tc.args...)
		if code != 1 || !strings.Contains(out, "unsafe queue directory") || !strings.Contains(out, tc.want) || strings.Contains(out, "--mode") {
			t.Errorf("%s mpq %s: exit status %d, output %q; want 1, saying %q", strings.Join(tc.env, " "), strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
	if got, want := testutil.Names(t, target), []string{"passwd"}; !slices.Equal(got, want) {
		t.Errorf("the target holds %q; want %q", got, want)
	}
	if got := testutil.Names(t, home); len(got) != 0 {
		t.Errorf("nobody's directory holds %q; want nothing", got)
	}

	// A queue file that is nobody's symbolic link: put refuses it, rm
	// removes the link.
	if out, code := mpq(nil, "--dir", pub, "put", "planted", "x"); code != 1 || !strings.Contains(out, "symbolic link (to "+passwd+"), which mpq never follows") {
		t.Errorf("mpq put into a queue file that is a symbolic link: exit status %d, output %q; want 1, saying so", code, out)
	}
	if out, code := mpq(nil, "--dir", pub, "rm", "planted"); code != 0 {
		t.Errorf("mpq rm of a queue file that is a symbolic link: exit status %d, output %q; want 0", code, out)
	}
	if _, err := os.Lstat(filepath.Join(pub, "planted.mpq")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after mpq rm the link: %v; want it gone", err)
	}
	if data, err := os.ReadFile(passwd); err != nil || string(data) != "root:x:0:0\n" {
		t.Errorf("after mpq rm the target holds %q, %v; want it unchanged", data, err)
	}

	// Root's own link and directory work.
	rootLink := filepath.Join(pub, "rootlink")
	if err := os.Symlink(target, rootLink); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{rootLink, filepath.Join(pub, "rootdir")} {
		for _, args := range [][]string{{"create", "q"}, {"put", "q", "m"}, {"get", "q"}, {"rm", "q"}} {
			if out, code := mpq(nil, append([]string{"--dir", dir}, args...)...); code != 0 {
				t.Errorf("mpq --dir %s %s: exit status %d, output %q; want 0", dir, strings.Join(args, " "), code, out)
			}
		}
	}
	if got, want := testutil.Names(t, target), []string{"passwd"}; !slices.Equal(got, want) {
		t.Errorf("after create and rm through root's link the target holds %q; want %q", got, want)
	}
}

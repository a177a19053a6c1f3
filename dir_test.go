package mpq_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("plant", runPlant)
	testutil.Register("swap", runSwap)
}

// runPlant is a hostile user (nobody) preparing traps for root in the
// public directory $PLANT_PUBLIC, all leading to $PLANT_TARGET, a directory
// of root's standing in for /etc:
//
//	link        a directory of its own, then replaced by a symbolic link to the target
//	home/       its own directory (mode 0755)
//	home/q      a directory, then replaced by a symbolic link to the target
//	planted.mpq a symbolic link to the target's passwd, where a queue file goes
func runPlant() error {
	pub, target := os.Getenv("PLANT_PUBLIC"), os.Getenv("PLANT_TARGET")
	replace := func(p string) error {
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		return os.Symlink(target, p)
	}
	if err := replace(filepath.Join(pub, "link")); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(pub, "home"), 0o755); err != nil {
		return err
	}
	if err := replace(filepath.Join(pub, "home", "q")); err != nil {
		return err
	}
	if err := os.Symlink(filepath.Join(target, "passwd"), filepath.Join(pub, "planted.mpq")); err != nil {
		return err
	}
	testutil.Say("planted")
	return nil
}

// traps are what runPlant made, as root sees them.
type traps struct {
	pub, target string
	nobody      int
}

// plant runs runPlant as nobody and checks that what it made is nobody's.
func plant(t *testing.T) traps {
	t.Helper()
	uid, gid := testutil.Nobody(t)
	tr := traps{pub: testutil.Public(t), target: t.TempDir(), nobody: uid}
	if fi, err := os.Stat(tr.pub); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Fatalf("public directory %s: %v, %v; want the sticky bit", tr.pub, fi.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(tr.target, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(tr.target, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := testutil.Start(t, "plant", testutil.AsUser(uid, gid),
		testutil.Env("PLANT_PUBLIC="+tr.pub, "PLANT_TARGET="+tr.target))
	c.Expect("planted", 10*time.Second)
	c.Succeed(10 * time.Second)
	for _, p := range []string{"link", "home", "home/q", "planted.mpq"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(tr.pub, p), &st); err != nil || int(st.Uid) != uid {
			t.Fatalf("%s: owner %d, %v; want nobody's (%d)", p, st.Uid, err, uid)
		}
	}
	return tr
}

// TestUnsafeDir: root (the test) uses queue directories that nobody, a real
// process of another user, redirected. Each call that takes a Dir refuses
// them with ErrUnsafeDir (and fs.ErrPermission), naming the component and
// its owner, and nothing is made where the traps lead; directories and
// symbolic links of root's own still work.
func TestUnsafeDir(t *testing.T) {
	tr := plant(t)
	pub := tr.pub
	mkdir := func(p string, mode os.FileMode) string {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	symlink := func(to, p string) string {
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootDir := mkdir(filepath.Join(pub, "rootdir"), 0o755)
	rootLink := symlink(tr.target, filepath.Join(pub, "rootlink"))
	toHome := symlink(filepath.Join(pub, "home"), filepath.Join(pub, "tohome"))
	open := mkdir(filepath.Join(pub, "open"), 0o777)
	sticky := mkdir(filepath.Join(pub, "sticky"), os.ModeSticky|0o777)

	for _, tc := range []struct {
		name, dir string
		want      []string // in the error; none: the directory is safe
	}{
		{"nobody's symbolic link in a public directory", filepath.Join(pub, "link"),
			[]string{"unsafe queue directory " + filepath.Join(pub, "link") + ": it is a symbolic link (to " + tr.target + ")", "nobody (uid ", "remove it"}},
		{"a directory below nobody's symbolic link", filepath.Join(pub, "link", "sub"),
			[]string{filepath.Join(pub, "link") + " is a symbolic link", "nobody (uid "}},
		{"nobody's symbolic link in nobody's directory", filepath.Join(pub, "home", "q"),
			[]string{"unsafe queue directory " + filepath.Join(pub, "home", "q") + ": it is a symbolic link", "nobody (uid "}},
		{"nobody's directory", filepath.Join(pub, "home"),
			[]string{"is a directory of nobody (uid ", "chown"}},
		{"root's symbolic link to nobody's directory", toHome,
			[]string{filepath.Join(pub, "home") + ", where it leads, is a directory of nobody (uid "}},
		{"world-writable without the sticky bit", open,
			[]string{open + ": it is writable by every user without the sticky bit (owned by root (uid 0), mode 0777)", "chmod +t"}},
		{"below a world-writable directory without the sticky bit", filepath.Join(open, "sub"),
			[]string{open + " is writable by every user without the sticky bit (owned by root (uid 0), mode 0777)"}},
		{"root's directory", rootDir, nil},
		{"root's symbolic link to root's directory", rootLink, nil},
		{"root's new directory in nobody's directory", filepath.Join(pub, "home", "new"), nil},
		{"world-writable with the sticky bit", sticky, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &mpq.Options{Dir: tc.dir, Capacity: 4096}
			check := func(call string, err error) {
				t.Helper()
				if tc.want == nil {
					if err != nil {
						t.Errorf("%s in %s: %v; want it to work", call, tc.dir, err)
					}
					return
				}
				if !errors.Is(err, mpq.ErrUnsafeDir) || !errors.Is(err, fs.ErrPermission) {
					t.Errorf("%s in %s: got %v; want %v (and %v)", call, tc.dir, err, mpq.ErrUnsafeDir, fs.ErrPermission)
					return
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s in %s: got %q; want it to say %q", call, tc.dir, err, w)
					}
				}
			}
			q, err := mpq.Open("passwd", o)
			check("Open", err)
			if err == nil {
				if err := q.TryPut([]byte("m")); err != nil {
					t.Error(err)
				}
				q.Close()
			}
			q, err = mpq.Create("new", o)
			check("Create", err)
			if err == nil {
				q.Close()
			}
			_, err = mpq.Inspect("passwd", o)
			check("Inspect", err)
			_, err = mpq.List(tc.dir)
			check("List", err)
			l, err := mpq.Listen("sock", &mpq.ListenOptions{Dir: tc.dir})
			check("Listen", err)
			if err == nil {
				l.Close()
			}
			err = mpq.RemoveIf("passwd", o, func(mpq.Stats) error { return nil })
			check("RemoveIf", err)
			err = mpq.Remove("new", o)
			check("Remove", err)
		})
	}
	if got, want := dirNames(t, tr.target), []string{"passwd", "sub"}; !slices.Equal(got, want) {
		t.Errorf("the target holds %q; want %q: something was made through a trap", got, want)
	}
	if got, want := dirNames(t, filepath.Join(tr.target, "sub")), []string(nil); !slices.Equal(got, want) {
		t.Errorf("the target's sub holds %q; want %q", got, want)
	}
	if got, want := dirNames(t, filepath.Join(pub, "home")), []string{"new", "q"}; !slices.Equal(got, want) {
		t.Errorf("nobody's directory holds %q; want %q", got, want)
	}
	if got, want := dirNames(t, open), []string(nil); !slices.Equal(got, want) {
		t.Errorf("the open directory holds %q; want %q", got, want)
	}
	if data, err := os.ReadFile(filepath.Join(tr.target, "passwd")); err != nil || string(data) != "root:x:0:0\n" {
		t.Errorf("the target's passwd holds %q, %v; want it unchanged", data, err)
	}
	// The safe ones were used, and RemoveIf and Remove emptied them.
	if got, want := dirNames(t, rootDir), []string(nil); !slices.Equal(got, want) {
		t.Errorf("root's directory holds %q; want %q", got, want)
	}
}

// TestQueueFileSymlinkRemoved: a queue file that is a symbolic link (here one
// that nobody planted, pointing at a file of root's) is never followed:
// Open refuses it saying so, and Remove, RemoveIf and Remove through mpq
// rm remove the link, leaving its target as it was.
func TestQueueFileSymlinkRemoved(t *testing.T) {
	tr := plant(t)
	passwd := filepath.Join(tr.target, "passwd")
	o := &mpq.Options{Dir: tr.pub, Capacity: 4096}
	for _, noCreate := range []bool{false, true} {
		q, err := mpq.Open("planted", &mpq.Options{Dir: tr.pub, Capacity: 4096, NoCreate: noCreate})
		if err == nil {
			q.Close()
		}
		if !errors.Is(err, mpq.ErrIncompatible) || !strings.Contains(err.Error(), "symbolic link (to "+passwd+"), which mpq never follows") {
			t.Errorf("Open(NoCreate %v) of a queue file that is a symbolic link: got %v; want %v saying it is a symbolic link to %s", noCreate, err, mpq.ErrIncompatible, passwd)
		}
	}
	if q, err := mpq.Create("planted", o); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over a symbolic link: got %v; want %v", err, fs.ErrExist)
		if err == nil {
			q.Close()
		}
	}

	other := t.TempDir() // root's own
	target := filepath.Join(other, "target")
	for _, tc := range []struct {
		name   string
		remove func(name string) error
	}{
		{"Remove", func(name string) error { return mpq.Remove(name, o) }},
		{"RemoveIf", func(name string) error {
			return mpq.RemoveIf(name, o, func(mpq.Stats) error { return errors.New("ok must not be called") })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, link := range []struct{ name, to string }{
				{"planted", passwd},                        // nobody's, to a file of root's
				{"mine", target},                           // root's, to a file
				{"dangling", filepath.Join(other, "none")}, // to nothing
				{"todir", other},                           // to a directory
			} {
				p := filepath.Join(tr.pub, link.name+".mpq")
				if link.name != "planted" {
					if err := os.Symlink(link.to, p); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := tc.remove(link.name); err != nil {
					t.Errorf("%s(%q), a symbolic link to %s: %v", tc.name, link.name, link.to, err)
				}
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("after %s(%q): the link: %v; want it gone", tc.name, link.name, err)
				}
				if data, err := os.ReadFile(target); err != nil || string(data) != "keep me" {
					t.Errorf("after %s(%q): target holds %q, %v; want it unchanged", tc.name, link.name, data, err)
				}
				if data, err := os.ReadFile(passwd); err != nil || string(data) != "root:x:0:0\n" {
					t.Errorf("after %s(%q): passwd holds %q, %v; want it unchanged", tc.name, link.name, data, err)
				}
				if got, want := dirNames(t, other), []string{"target"}; !slices.Equal(got, want) {
					t.Errorf("after %s(%q): the link's directory holds %q; want %q", tc.name, link.name, got, want)
				}
			}
			if err := tc.remove("planted"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s of a removed link: got %v; want %v", tc.name, err, fs.ErrNotExist)
			}
			// Put nobody's link back for the next subtest, as root.
			if err := os.Symlink(passwd, filepath.Join(tr.pub, "planted.mpq")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDirReplacedLater: root makes a queue in a directory of its own
// inside nobody's; nobody then moves it aside and puts a symbolic link to
// root's target in its place. The next Open by the same path is refused.
func TestDirReplacedLater(t *testing.T) {
	tr := plant(t)
	dir := filepath.Join(tr.pub, "home", "rootq")
	q, err := mpq.Open("passwd", &mpq.Options{Dir: dir, Capacity: 4096})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	uid, gid := testutil.Nobody(t)
	c := testutil.Start(t, "swap", testutil.AsUser(uid, gid),
		testutil.Env("SWAP_DIR="+dir, "SWAP_TARGET="+tr.target))
	c.Expect("swapped", 10*time.Second)
	c.Succeed(10 * time.Second)
	if q, err := mpq.Open("passwd", &mpq.Options{Dir: dir, Capacity: 4096}); !errors.Is(err, mpq.ErrUnsafeDir) {
		t.Errorf("Open through a directory nobody replaced by a link: got %v; want %v", err, mpq.ErrUnsafeDir)
		if err == nil {
			q.Close()
		}
	}
	if got, want := dirNames(t, tr.target), []string{"passwd", "sub"}; !slices.Equal(got, want) {
		t.Errorf("the target holds %q; want %q", got, want)
	}
	if data, _ := os.ReadFile(filepath.Join(tr.target, "passwd")); !bytes.Equal(data, []byte("root:x:0:0\n")) {
		t.Errorf("the target's passwd holds %q; want it unchanged", data)
	}
	if got, want := dirNames(t, dir+".away"), []string{"passwd.mpq"}; !slices.Equal(got, want) {
		t.Errorf("root's directory, moved aside, holds %q; want %q", got, want)
	}
}

// runSwap is nobody moving $SWAP_DIR (root's, in nobody's directory)
// aside and putting a symbolic link to $SWAP_TARGET in its place.
func runSwap() error {
	dir := os.Getenv("SWAP_DIR")
	if err := os.Rename(dir, dir+".away"); err != nil {
		return err
	}
	if err := os.Symlink(os.Getenv("SWAP_TARGET"), dir); err != nil {
		return err
	}
	testutil.Say("swapped")
	return nil
}

// dirNames lists dir, for the checks that nothing was made in it, but
// for the lock files of the queues it holds.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, n := range testutil.Names(t, dir) {
		if !isLockOfQueue(filepath.Join(dir, n)) {
			names = append(names, n)
		}
	}
	return names
}

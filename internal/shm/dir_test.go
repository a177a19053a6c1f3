package shm_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mpq-go/mpq/internal/shm"
)

// TestOpenDirWalk: OpenDir resolves what the kernel would (relative paths,
// "..", chains of links with relative and absolute targets) and ends in
// the same directory, and fails as the kernel would for loops, files and
// missing components.
func TestOpenDirWalk(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	for _, p := range []string{"a/b/c", "x"} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"a/up":     "..",                          // relative, to base
		"a/b/toc":  "c",                           // relative, down
		"a/b/far":  "../../x",                     // relative, up two
		"chain":    "a/up/a/b/toc",                // through other links
		"abs":      filepath.Join(base, "a", "b"), // absolute
		"loop1":    "loop2",
		"loop2":    "loop1",
		"tofile":   "file",
		"dangling": "none",
	}
	for p, to := range links {
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile("file", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want string // the directory reached, or "" for an error
		err  error
	}{
		{".", base, nil},
		{"", base, nil},
		{"a/b/c", "a/b/c", nil},
		{"a/b/../b/c", "a/b/c", nil},
		{"a/up/x", "x", nil},
		{"a/b/toc", "a/b/c", nil},
		{"a/b/far", "x", nil},
		{"chain", "a/b/c", nil},
		{"chain/..", ".", nil}, // cleaned first, as filepath.Join (and so Path) does
		{"abs/c", "a/b/c", nil},
		{filepath.Join(base, "chain"), "a/b/c", nil},
		{"/", "/", nil},
		{"loop1", "", syscall.ELOOP},
		{"tofile", "", syscall.ENOTDIR},
		{"file", "", syscall.ENOTDIR},
		{"file/sub", "", syscall.ENOTDIR},
		{"dangling", "", fs.ErrNotExist},
		{"none/sub", "", fs.ErrNotExist},
	} {
		d, err := shm.OpenDir(tc.dir)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || errors.Is(err, shm.ErrUnsafeDir) {
				t.Errorf("OpenDir(%q): got %v; want %v", tc.dir, err, tc.err)
			}
			if err == nil {
				d.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("OpenDir(%q): %v", tc.dir, err)
			continue
		}
		d.Close()
		if tc.want == "/" {
			continue
		}
		// A file made through the walk is the one the kernel finds at want.
		f, mem, err := shm.Create(filepath.Join(tc.dir, "probe"+shm.Ext), 0o600, 4096, func(*os.File, []byte) error { return nil })
		if err != nil {
			t.Errorf("Create in %q: %v", tc.dir, err)
			continue
		}
		shm.Unmap(mem)
		f.Close()
		at := filepath.Join(tc.want, "probe"+shm.Ext)
		if _, err := os.Lstat(at); err != nil {
			t.Errorf("Create in %q: %v; want the file at %s", tc.dir, err, at)
		}
		os.Remove(at)
	}
}

// TestOpenDirOwners: links and directories of another user (made here by
// root and handed to nobody's uid with Lchown; dir_test.go at the root has
// the same with a real process of nobody) are refused, each with a message
// that names the component and its owner.
func TestOpenDirOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root, to give files to another user")
		}
		t.Skip("needs root, to give files to another user")
	}
	const other = 65534
	base := t.TempDir()
	mine := filepath.Join(base, "mine")
	theirs := filepath.Join(base, "theirs")
	for _, p := range []string{mine, theirs} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(theirs, other, other); err != nil {
		t.Fatal(err)
	}
	link := func(name, to string, uid int) string {
		p := filepath.Join(base, name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	theirLink := link("theirlink", mine, other)
	myLink := link("mylink", mine, 0)
	myLinkToTheirs := link("mylinktotheirs", theirs, 0)
	myLinkToTheirLink := link("mylinktotheirlink", "theirlink", 0)
	for _, tc := range []struct {
		dir  string
		want string // in the error; "" for none
	}{
		{mine, ""},
		{myLink, ""},
		{theirs, theirs + ": it is a directory of "},
		{filepath.Join(theirs, "sub"), "not exist"}, // missing: EnsureDir makes it, root's
		{theirLink, theirLink + ": it is a symbolic link (to " + mine + ") owned by "},
		{filepath.Join(theirLink, "."), theirLink + ": it is a symbolic link"},
		{myLinkToTheirs, theirs + ", where it leads, is a directory of "},
		{myLinkToTheirLink, theirLink + " is a symbolic link"},
	} {
		d, err := shm.OpenDir(tc.dir)
		switch {
		case tc.want == "":
			if err != nil {
				t.Errorf("OpenDir(%q): %v", tc.dir, err)
			} else {
				d.Close()
			}
		case tc.want == "not exist":
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("OpenDir(%q): got %v; want %v", tc.dir, err, fs.ErrNotExist)
			}
		case !errors.Is(err, shm.ErrUnsafeDir) || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), tc.want):
			t.Errorf("OpenDir(%q): got %v; want %v saying %q", tc.dir, err, shm.ErrUnsafeDir, tc.want)
		}
		if err == nil {
			continue
		}
		// EnsureDir refuses the same, and leaves nothing behind.
		if _, err := shm.EnsureDir(tc.dir, false); tc.want != "not exist" && !errors.Is(err, shm.ErrUnsafeDir) {
			t.Errorf("EnsureDir(%q): got %v; want %v", tc.dir, err, shm.ErrUnsafeDir)
		}
	}
	if ents, err := os.ReadDir(mine); err != nil || len(ents) != 0 {
		t.Errorf("%s holds %d entries, %v; want none: something was made through their link", mine, len(ents), err)
	}
}

// TestEnsureDirUndo: undo removes the directories EnsureDir made, deepest
// first, and only those.
func TestEnsureDirUndo(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "c")
	if err := os.Mkdir(filepath.Join(base, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	undo, err := shm.EnsureDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode() != os.ModeDir|0o700 {
		t.Fatalf("EnsureDir made %v, %v; want mode %v", fi.Mode(), err, os.ModeDir|0o700)
	}
	undo()
	if _, err := os.Lstat(filepath.Join(base, "a", "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after undo: a/b: %v; want it gone", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "a")); err != nil {
		t.Errorf("after undo: a, which EnsureDir did not make: %v; want it kept", err)
	}
}

// TestOpenFileSymlink: a queue file that is a symbolic link gives
// ErrSymlink (and ErrNotRegular), saying where it points; Remove removes
// the link and leaves the target.
func TestOpenFileSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "q"+shm.Ext)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func(string) (*os.File, error){shm.OpenFile, shm.OpenReadOnly} {
		f, err := open(p)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, shm.ErrSymlink) || !errors.Is(err, shm.ErrNotRegular) || !strings.Contains(err.Error(), "(to "+target+")") {
			t.Errorf("open of a symbolic link: got %v; want %v saying where it points", err, shm.ErrSymlink)
		}
	}
	if _, _, err := shm.Create(p, 0o600, 4096, func(*os.File, []byte) error { return nil }); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over a symbolic link: got %v; want %v", err, fs.ErrExist)
	}
	if err := shm.Remove(dir, "q"+shm.Ext, "q"+shm.Ext+".other"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove the link: %v; want it gone", err)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != "keep" {
		t.Errorf("after Remove the target holds %q, %v; want it unchanged", data, err)
	}
	if err := shm.Remove(dir, "q"+shm.Ext); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a missing file: got %v; want %v", err, fs.ErrNotExist)
	}
}

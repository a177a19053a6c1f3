package shm

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"q", true},
		{"jobs-1_a.b", true},
		{"a b", true},
		{"ü", true},
		{"a.", true},
		{"a\\b", true},
		{strings.Repeat("x", MaxNameLen), true},
		{"", false},
		{strings.Repeat("x", MaxNameLen+1), false},
		{"a/b", false},
		{"/", false},
		{"a/", false},
		{"x\x00y", false},
		{"..", false},
		{"a..b", false},
		{"..a", false},
		{".", false},
		{".hidden", false},
	} {
		err := CheckName(tc.name)
		if tc.ok && err != nil {
			t.Errorf("CheckName(%q) = %v; want nil", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidName) {
			t.Errorf("CheckName(%q) = %v; want %v", tc.name, err, ErrInvalidName)
		}
	}
}

func TestPath(t *testing.T) {
	for _, dir := range []string{"/tmp/q", "/tmp/q/", "/tmp/./q", "rel", "rel/../other", "/"} {
		for _, name := range []string{"a", "a.b", "a b", strings.Repeat("n", MaxNameLen)} {
			p, err := Path(dir, name)
			if err != nil {
				t.Errorf("Path(%q, %q): %v", dir, name, err)
				continue
			}
			if got, want := filepath.Dir(p), filepath.Clean(dir); got != want {
				t.Errorf("Path(%q, %q) = %q: directory %q; want %q", dir, name, p, got, want)
			}
			if got := filepath.Base(p); got != name+Ext {
				t.Errorf("Path(%q, %q) = %q: base %q; want %q", dir, name, p, got, name+Ext)
			}
		}
		for _, name := range []string{"", "../x", "a/b", "..", ".x"} {
			if p, err := Path(dir, name); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Path(%q, %q) = %q, %v; want %v", dir, name, p, err, ErrInvalidName)
			}
		}
	}
}

func TestDefaultDir(t *testing.T) {
	fallback := filepath.Join("/dev/shm", fmt.Sprintf("mpq-%d", os.Getuid()))
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		fallback = filepath.Join(os.TempDir(), fmt.Sprintf("mpq-%d", os.Getuid()))
	}
	xdg := t.TempDir()
	file := filepath.Join(xdg, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		xdg, want string
	}{
		{xdg, filepath.Join(xdg, "mpq")},
		{"", fallback},
		{filepath.Join(xdg, "missing"), fallback},
		{file, fallback},
	} {
		t.Setenv("XDG_RUNTIME_DIR", tc.xdg)
		if got := DefaultDir(); got != tc.want {
			t.Errorf("with XDG_RUNTIME_DIR=%q: DefaultDir() = %q; want %q", tc.xdg, got, tc.want)
		}
	}
}

func TestEnsureDir(t *testing.T) {
	base := t.TempDir()
	mode := func(p string) os.FileMode {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode()
	}
	// Missing directories (and parents) are created 0700.
	for _, private := range []bool{false, true} {
		dir := filepath.Join(base, fmt.Sprint("new", private), "sub")
		if _, err := EnsureDir(dir, private); err != nil {
			t.Fatalf("EnsureDir(%q, %v): %v", dir, private, err)
		}
		if got := mode(dir); got != os.ModeDir|0o700 {
			t.Errorf("EnsureDir(%q, %v) made mode %v; want %v", dir, private, got, os.ModeDir|0o700)
		}
		if _, err := EnsureDir(dir, private); err != nil {
			t.Errorf("EnsureDir of an existing private directory: %v", err)
		}
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	sticky := filepath.Join(base, "sticky")
	if err := os.Mkdir(sticky, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(filepath.Join(base, "newtrue"), link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir              string
		private, wantErr bool
	}{
		{open, true, true},
		{open, false, true}, // anyone could replace what is in it
		{sticky, true, true},
		{sticky, false, false}, // as /tmp: an explicit Dir may be shared
		{link, true, true},
		{link, false, false},
		{file, true, true},
		{file, false, true},
		{filepath.Join(file, "sub"), false, true},
	} {
		_, err := EnsureDir(tc.dir, tc.private)
		if (err != nil) != tc.wantErr {
			t.Errorf("EnsureDir(%q, private %v) = %v; want error: %v", tc.dir, tc.private, err, tc.wantErr)
		}
	}
	if got := mode(open); got != os.ModeDir|0o777 {
		t.Errorf("EnsureDir changed the mode of an existing directory to %v", got)
	}
}

// noTemp fails t if dir holds anything but the names given.
func noTemp(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Errorf("directory holds %q; want %q", got, names)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q"+Ext)
	const size = 3 * 4096
	var initLen int
	f, mem, err := Create(path, 0o640, size, func(_ *os.File, mem []byte) error {
		initLen = len(mem)
		copy(mem, "hello")
		mem[size-1] = 'z'
		return nil
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer f.Close()
	defer Unmap(mem)
	if initLen != size || len(mem) != size {
		t.Errorf("init got %d bytes, Create returned %d; want %d", initLen, len(mem), size)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o640 || fi.Size() != size {
		t.Errorf("file mode %v, size %d; want %v, %d", fi.Mode(), fi.Size(), os.FileMode(0o640), size)
	}
	if n, err := Size(f); err != nil || n != size {
		t.Errorf("Size = %d, %v; want %d", n, err, size)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("hello")) || data[size-1] != 'z' {
		t.Errorf("the file does not hold what init wrote")
	}
	// The mapping is shared with the file.
	mem[10] = 'x'
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 10); err != nil || b[0] != 'x' {
		t.Errorf("a store to the mapping is not in the file")
	}
	noTemp(t, dir, "q"+Ext)

	// An existing file is left alone.
	_, _, err = Create(path, 0o600, size, func(*os.File, []byte) error { return nil })
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over an existing file: got %v; want %v", err, fs.ErrExist)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after[:5], []byte("hello")) || len(after) != size {
		t.Errorf("Create over an existing file changed it")
	}
	noTemp(t, dir, "q"+Ext)

	// A failing init leaves nothing behind.
	bad := filepath.Join(dir, "bad"+Ext)
	initErr := errors.New("init failed")
	if _, _, err := Create(bad, 0o600, size, func(*os.File, []byte) error { return initErr }); !errors.Is(err, initErr) {
		t.Errorf("Create with a failing init: got %v; want %v", err, initErr)
	}
	noTemp(t, dir, "q"+Ext)

	// Exact permission bits, whatever the umask.
	p666 := filepath.Join(dir, "open"+Ext)
	f2, mem2, err := Create(p666, 0o666, 4096, func(*os.File, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	Unmap(mem2)
	f2.Close()
	if fi, err := os.Stat(p666); err != nil || fi.Mode() != 0o666 {
		t.Errorf("Create with mode 0666: %v, %v", fi.Mode(), err)
	}
	if _, _, err := Create(filepath.Join(dir, "missing", "q"+Ext), 0o600, 4096, func(*os.File, []byte) error { return nil }); err == nil {
		t.Errorf("Create in a missing directory succeeded")
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q"+Ext)
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	f.Close()
	link := filepath.Join(dir, "link"+Ext)
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if f, err := OpenFile(link); err == nil {
		f.Close()
		t.Errorf("OpenFile of a symbolic link succeeded")
	}
	if _, err := OpenFile(filepath.Join(dir, "missing"+Ext)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile of a missing file: got %v; want %v", err, fs.ErrNotExist)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := Size(d); err == nil {
		t.Errorf("Size of a directory succeeded")
	}
}

func TestAnonymous(t *testing.T) {
	f, mem, err := Anonymous("", 8192, func(mem []byte) error {
		copy(mem[100:], "anon")
		return nil
	})
	if err != nil {
		t.Fatalf("Anonymous: %v", err)
	}
	defer f.Close()
	if n, err := Size(f); err != nil || n != 8192 {
		t.Errorf("Size = %d, %v; want 8192", n, err)
	}
	// A second mapping of the same file sees the first's stores.
	mem2, err := Map(f, 8192)
	if err != nil {
		t.Fatal(err)
	}
	if string(mem2[100:104]) != "anon" {
		t.Errorf("second mapping holds %q; want %q", mem2[100:104], "anon")
	}
	mem[200] = 7
	if mem2[200] != 7 {
		t.Errorf("mappings are not shared")
	}
	if err := Unmap(mem2); err != nil {
		t.Error(err)
	}
	if err := Unmap(mem); err != nil {
		t.Error(err)
	}
	initErr := errors.New("init failed")
	if _, _, err := Anonymous("", 4096, func([]byte) error { return initErr }); !errors.Is(err, initErr) {
		t.Errorf("Anonymous with a failing init: got %v; want %v", err, initErr)
	}
}

func TestMapSizes(t *testing.T) {
	f, mem, err := Anonymous("", 4096, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer Unmap(mem)
	for _, size := range []int64{0, -1, -4096} {
		if m, err := Map(f, size); err == nil {
			Unmap(m)
			t.Errorf("Map(%d) succeeded", size)
		}
	}
}

// MemfdLabel reads back the label MemfdName put in a memfd's name, as
// /proc/PID/fd shows it, and recognises nothing else as a queue's.
func TestMemfdLabel(t *testing.T) {
	for _, tc := range []struct {
		link  string
		label string
		ok    bool
	}{
		{"/memfd:" + MemfdName("") + " (deleted)", "", true},
		{"/memfd:" + MemfdName("pool sq: tasks") + " (deleted)", "pool sq: tasks", true},
		{"/memfd:mpq:x (deleted) (deleted)", "x (deleted)", true},
		{"/memfd:mpq-proc-args (deleted)", "", false},
		{"/memfd:mpqx (deleted)", "", false},
		{"/memfd:mpq", "", false},
		{"/dev/shm/mpq-0/jobs.mpq", "", false},
		{"socket:[1234]", "", false},
	} {
		label, ok := MemfdLabel(tc.link)
		if label != tc.label || ok != tc.ok {
			t.Errorf("MemfdLabel(%q): got %q, %v; want %q, %v", tc.link, label, ok, tc.label, tc.ok)
		}
	}
}

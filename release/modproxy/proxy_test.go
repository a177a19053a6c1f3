package main

import (
	"archive/zip"
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// committed is the repository the tests release: a module with a nested
// module, a LICENSE at the root only, and a .gitignore.
var committed = map[string]string{
	"go.mod":     "module example.com/m\n\ngo 1.22\n",
	"m.go":       "package m\n",
	"LICENSE":    "the license\n",
	".gitignore": "*.out\n",
	"sub/go.mod": "module example.com/m/sub\n\ngo 1.22\n\nrequire example.com/m v0.1.0\n",
	"sub/s.go":   "package sub\n",
}

// newRepo makes a git repository in a new directory with files committed,
// and returns its path.
func newRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	for k, v := range map[string]string{
		"GIT_CONFIG_GLOBAL": os.DevNull, "GIT_CONFIG_NOSYSTEM": "1",
		"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
		"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
		"GIT_COMMITTER_DATE": "2025-06-01T12:00:00Z",
	} {
		t.Setenv(k, v)
	}
	repo := t.TempDir()
	runGit(t, repo, "init", "--quiet", "-b", "main")
	writeFiles(t, repo, files)
	runGit(t, repo, "add", "-A")
	runGit(t, repo, "commit", "--quiet", "-m", "release me")
	return repo
}

// runGit runs git with args in dir and fails the test if it fails.
func runGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	if _, err := gitBytes(dir, args...); err != nil {
		t.Fatal(err)
	}
}

// writeFiles writes files (path: contents) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// zipFiles returns the files in the proxy's zip of module at v0.1.0,
// name: contents, names relative to the module's root.
func zipFiles(t *testing.T, out, module string) map[string]string {
	t.Helper()
	z, err := zip.OpenReader(filepath.Join(out, module, "@v", "v0.1.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	files := make(map[string]string)
	for _, f := range z.File {
		data, err := readZipFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(f.Name, module+"@v0.1.0/")
		if !ok {
			t.Errorf("%s: %s is outside %s@v0.1.0/", module, f.Name, module)
		}
		files[name] = string(data)
	}
	return files
}

// names returns the sorted keys of files.
func names(files map[string]string) []string {
	var n []string
	for k := range files {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// readFile returns the contents of the file name under dir.
func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestBuildHoldsWhatIsCommittedOnly(t *testing.T) {
	repo := newRepo(t, committed)
	// After the commit: an ignored build output, untracked files in both
	// modules, and a change to a tracked file.
	writeFiles(t, repo, map[string]string{
		"build.out": "a binary", "untracked.go": "package m\n", "sub/untracked.go": "package sub\n",
		"m.go": "package m // changed\n",
	})
	out := t.TempDir()
	var warn bytes.Buffer
	built, err := build(config{repo: repo, rev: "HEAD", version: "v0.1.0", out: out, dirs: []string{".", "sub"}}, &warn)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 2 || built[0].files != 4 || built[1].files != 3 {
		t.Errorf("built %v; want example.com/m with 4 files and example.com/m/sub with 3", built)
	}
	m := zipFiles(t, out, "example.com/m")
	if got, want := names(m), []string{".gitignore", "LICENSE", "go.mod", "m.go"}; !slices.Equal(got, want) {
		t.Errorf("example.com/m's zip holds %q; want %q (no nested module, no ignored or untracked file)", got, want)
	}
	if m["m.go"] != committed["m.go"] {
		t.Errorf("example.com/m's m.go is %q; want the committed %q", m["m.go"], committed["m.go"])
	}
	sub := zipFiles(t, out, "example.com/m/sub")
	if got, want := names(sub), []string{"LICENSE", "go.mod", "s.go"}; !slices.Equal(got, want) {
		t.Errorf("example.com/m/sub's zip holds %q; want %q (the root's LICENSE, no untracked file)", got, want)
	}
	for file, want := range map[string]string{
		"example.com/m/@v/list":            "v0.1.0\n",
		"example.com/m/@v/v0.1.0.info":     `{"Version":"v0.1.0","Time":"2025-06-01T12:00:00Z"}` + "\n",
		"example.com/m/@v/v0.1.0.mod":      committed["go.mod"],
		"example.com/m/sub/@v/v0.1.0.mod":  committed["sub/go.mod"],
		"example.com/m/sub/@v/v0.1.0.info": `{"Version":"v0.1.0","Time":"2025-06-01T12:00:00Z"}` + "\n",
	} {
		if got := readFile(t, out, file); got != want {
			t.Errorf("%s is %q; want %q", file, got, want)
		}
	}
	if !strings.Contains(warn.String(), "the zips hold commit") || !strings.Contains(warn.String(), "untracked.go") {
		t.Errorf("build's note is %q; want one saying the work tree's changes are not in the zips", warn.String())
	}
}

func TestBuildRefusesReplaceAndWritesNothing(t *testing.T) {
	files := maps.Clone(committed)
	files["sub/go.mod"] += "\nreplace example.com/m v0.1.0 => ../\n"
	repo := newRepo(t, files)
	out := t.TempDir()
	_, err := build(config{repo: repo, rev: "HEAD", version: "v0.1.0", out: out, dirs: []string{".", "sub"}}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "sub/go.mod:7: replace example.com/m") {
		t.Fatalf("build of a go.mod with replace: got %v; want an error naming sub/go.mod's replace line", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("build that failed wrote %d entries in the proxy directory; want none", len(ents))
	}
}

func TestBuildFromGitWorktree(t *testing.T) {
	repo := newRepo(t, committed)
	wt := filepath.Join(t.TempDir(), "wt")
	runGit(t, repo, "worktree", "add", "--quiet", "-b", "other", wt)
	writeFiles(t, wt, map[string]string{"m.go": "package m // in the worktree\n"})
	runGit(t, wt, "commit", "--quiet", "-am", "change in the worktree")
	out := t.TempDir()
	if _, err := build(config{repo: wt, rev: "HEAD", version: "v0.1.0", out: out, dirs: []string{"."}}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := zipFiles(t, out, "example.com/m")["m.go"]; got != "package m // in the worktree\n" {
		t.Errorf("m.go from the worktree's HEAD is %q; want the worktree's commit", got)
	}
}

func TestBuildRefusesNonCanonicalVersion(t *testing.T) {
	for _, v := range []string{"0.1.0", "v0.1", "v1.0.0+build"} {
		if _, err := build(config{version: v}, io.Discard); err == nil || !strings.Contains(err.Error(), "not a canonical semantic version") {
			t.Errorf("build of version %q: got %v; want an error", v, err)
		}
	}
}

func TestAddToListKeepsVersionsInOrder(t *testing.T) {
	list := filepath.Join(t.TempDir(), "list")
	for _, v := range []string{"v0.10.0", "v0.2.0", "v0.10.0"} {
		if err := addToList(list, v); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := readFile(t, filepath.Dir(list), "list"), "v0.2.0\nv0.10.0\n"; got != want {
		t.Errorf("list is %q; want %q", got, want)
	}
}

package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

// config says what to release and where to write the proxy.
type config struct {
	repo    string   // the repository's root (its work tree)
	rev     string   // the git revision to release
	version string   // the version the modules get
	out     string   // the proxy directory
	dirs    []string // the modules' directories in the repository, "." for the root
}

// built is one module version written to the proxy.
type built struct {
	mod      module.Version
	files    int   // the files in its zip
	zipped   int64 // the zip's size in bytes
	unzipped int64 // its files' total size in bytes
}

// String describes b in a line: the module, its zip's file count and sizes.
func (b built) String() string {
	return fmt.Sprintf("%s@%s: %d files, zip %s (%s unzipped; the limits are %d MiB each)",
		b.mod.Path, b.mod.Version, b.files, kib(b.zipped), kib(b.unzipped), modzip.MaxZipFile>>20)
}

// kib formats n bytes in KiB.
func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// build writes cfg's modules at cfg.version from the commit cfg.rev names
// into the proxy directory cfg.out. It checks every module's go.mod before
// it writes anything. Notes for the user (a working tree with changes the
// zips leave out) go to warn.
func build(cfg config, warn io.Writer) ([]built, error) {
	if !semver.IsValid(cfg.version) || semver.Canonical(cfg.version) != cfg.version {
		return nil, fmt.Errorf("version %q is not a canonical semantic version such as v0.1.0", cfg.version)
	}
	commit, err := git(cfg.repo, "rev-parse", "--verify", "--end-of-options", cfg.rev+"^{commit}")
	if err != nil {
		return nil, err
	}
	when, err := commitTime(cfg.repo, commit)
	if err != nil {
		return nil, err
	}
	noteChanges(cfg.repo, commit, warn)
	mods, err := readGoMods(cfg.repo, commit, cfg.dirs)
	if err != nil {
		return nil, err
	}
	if err := checkRelease(mods, cfg.version); err != nil {
		return nil, fmt.Errorf("commit %.12s cannot be released as %s:\n%w", commit, cfg.version, err)
	}
	clone, err := cloneShared(cfg.repo)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Dir(clone))
	var all []built
	for _, g := range mods {
		b, err := writeModule(cfg.out, clone, commit, when, g, cfg.version)
		if err != nil {
			return nil, err
		}
		all = append(all, b)
	}
	return all, nil
}

// readGoMods reads and parses the go.mod of each module directory in dirs
// as commit has it.
func readGoMods(repo, commit string, dirs []string) ([]goMod, error) {
	var mods []goMod
	for _, d := range dirs {
		d = path.Clean(strings.TrimSpace(d))
		if d == "." {
			d = ""
		}
		g := goMod{dir: d}
		data, err := gitBytes(repo, "cat-file", "blob", commit+":"+path.Join(d, "go.mod"))
		if err != nil {
			return nil, fmt.Errorf("reading %s of commit %.12s: %w", g.name(), commit, err)
		}
		g, err = parseGoMod(d, data)
		if err != nil {
			return nil, err
		}
		mods = append(mods, g)
	}
	return mods, nil
}

// writeModule writes the module of g at version, from the clone's commit
// made at when, into the proxy directory out, and checks its zip.
func writeModule(out, clone, commit string, when time.Time, g goMod, version string) (built, error) {
	m := module.Version{Path: g.path(), Version: version}
	b := built{mod: m}
	escPath, err := module.EscapePath(m.Path)
	if err != nil {
		return b, err
	}
	escVers, err := module.EscapeVersion(m.Version)
	if err != nil {
		return b, err
	}
	dir := filepath.Join(out, filepath.FromSlash(escPath), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return b, err
	}
	base := filepath.Join(dir, escVers)
	if err := writeZip(base+".zip", m, clone, commit, g); err != nil {
		return b, err
	}
	if b, err = measure(base+".zip", m, g.data); err != nil {
		return b, err
	}
	info, err := json.Marshal(struct{ Version, Time string }{version, when.UTC().Format(time.RFC3339)})
	if err != nil {
		return b, err
	}
	if err := os.WriteFile(base+".info", append(info, '\n'), 0o644); err != nil {
		return b, err
	}
	if err := os.WriteFile(base+".mod", g.data, 0o644); err != nil {
		return b, err
	}
	return b, addToList(filepath.Join(dir, "list"), version)
}

// writeZip writes the zip of module m, the files of g's directory in the
// clone's commit, to file.
func writeZip(file string, m module.Version, clone, commit string, g goMod) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	err = modzip.CreateFromVCS(f, m, clone, commit, g.dir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("%s: %w", m, err)
	}
	return nil
}

// measure checks the zip of m in file against the limits of module zips,
// and that its go.mod is goMod (what the proxy serves as the .mod file),
// and returns its file count and sizes.
func measure(file string, m module.Version, goMod []byte) (built, error) {
	b := built{mod: m}
	if _, err := modzip.CheckZip(m, file); err != nil {
		return b, fmt.Errorf("%s: %w", file, err)
	}
	z, err := zip.OpenReader(file)
	if err != nil {
		return b, err
	}
	defer z.Close()
	fi, err := os.Stat(file)
	if err != nil {
		return b, err
	}
	b.zipped = fi.Size()
	prefix := m.Path + "@" + m.Version + "/"
	sawGoMod := false
	for _, f := range z.File {
		b.files++
		b.unzipped += int64(f.UncompressedSize64)
		if f.Name == prefix+"go.mod" {
			data, err := readZipFile(f)
			if err != nil {
				return b, err
			}
			sawGoMod = bytes.Equal(data, goMod)
		}
	}
	if !sawGoMod {
		return b, fmt.Errorf("%s: its go.mod is missing or differs from the go.mod served beside it", file)
	}
	return b, nil
}

// readZipFile returns the contents of f.
func readZipFile(f *zip.File) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// addToList adds version to the proxy's list file of a module, keeping the
// versions already there, in semantic-version order.
func addToList(file, version string) error {
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	versions := strings.Fields(string(data))
	if !slices.Contains(versions, version) {
		versions = append(versions, version)
	}
	semver.Sort(versions)
	return os.WriteFile(file, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

package main

import (
	"errors"
	"fmt"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// goMod is one module's go.mod as committed: where it is in the
// repository, its bytes, and its parsed form.
type goMod struct {
	dir  string // the module's directory in the repository, "" for the root
	data []byte
	file *modfile.File
}

// parseGoMod parses data, the go.mod of the module in dir.
func parseGoMod(dir string, data []byte) (goMod, error) {
	g := goMod{dir: dir, data: data}
	f, err := modfile.Parse(g.name(), data, nil)
	if err != nil {
		return goMod{}, err
	}
	if f.Module == nil {
		return goMod{}, fmt.Errorf("%s: no module line", g.name())
	}
	g.file = f
	return g, nil
}

// path is the module's path.
func (g goMod) path() string { return g.file.Module.Mod.Path }

// checkRelease reports what in mods would keep a user from building the
// modules at version from a proxy: a malformed path or version, two modules
// with one path, a replace directive (the go command ignores replace lines
// of a dependency, and go install refuses them), or a require of another of
// mods at a version other than version (a user would get that other
// version, or none if it was never published). It returns all the problems
// found, joined.
func checkRelease(mods []goMod, version string) error {
	released := make(map[string]bool)
	var errs []error
	for _, g := range mods {
		if err := module.Check(g.path(), version); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.name(), err))
		}
		if released[g.path()] {
			errs = append(errs, fmt.Errorf("%s: module %s is released twice", g.name(), g.path()))
		}
		released[g.path()] = true
	}
	for _, g := range mods {
		for _, r := range g.file.Replace {
			errs = append(errs, fmt.Errorf("%s:%d: replace %s: a published go.mod must not replace modules (keep replace lines in go.work)",
				g.name(), r.Syntax.Start.Line, r.Old.Path))
		}
		for _, r := range g.file.Require {
			if released[r.Mod.Path] && r.Mod.Version != version {
				errs = append(errs, fmt.Errorf("%s:%d: requires %s %s, but the release makes it %s",
					g.name(), r.Syntax.Start.Line, r.Mod.Path, r.Mod.Version, version))
			}
		}
	}
	return errors.Join(errs...)
}

// name is how messages name the go.mod file: its path in the repository.
func (g goMod) name() string {
	if g.dir == "" {
		return "go.mod"
	}
	return g.dir + "/go.mod"
}

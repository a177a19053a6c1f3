package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// gitBytes runs git with args in dir ("" for the current directory) and
// returns its standard output.
func gitBytes(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// git runs git with args in dir and returns its output without the
// surrounding white space.
func git(dir string, args ...string) (string, error) {
	out, err := gitBytes(dir, args...)
	return strings.TrimSpace(string(out)), err
}

// commitTime is when commit was committed: the Time the proxy gives the
// version, as the public proxy gives a tag its commit's time.
func commitTime(repo, commit string) (time.Time, error) {
	s, err := git(repo, "show", "-s", "--format=%cI", commit)
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339, s)
}

// noteChanges tells warn if commit is the work tree's HEAD and the work
// tree has changes, or files git does not track: the zips hold the commit
// only, as a tag of it would.
func noteChanges(repo, commit string, warn io.Writer) {
	head, err := git(repo, "rev-parse", "HEAD")
	if err != nil || head != commit {
		return
	}
	status, err := git(repo, "status", "--porcelain")
	if err != nil || status == "" {
		return
	}
	fmt.Fprintf(warn, "modproxy: note: the work tree has uncommitted changes or untracked files; the zips hold commit %.12s only:\n%s\n",
		commit, status)
}

// cloneShared makes a clone of repo without a work tree that shares repo's
// objects, in a new temporary directory, and returns the clone's path; the
// caller removes the clone's parent directory. CreateFromVCS takes only a
// repository whose .git is a directory, which a git worktree's is not (it
// is a file naming the main repository); a shared clone costs a few
// milliseconds and serves both, and holds every commit of repo.
func cloneShared(repo string) (string, error) {
	tmp, err := os.MkdirTemp("", "modproxy-")
	if err != nil {
		return "", err
	}
	clone := filepath.Join(tmp, "repo")
	if _, err := git("", "clone", "--quiet", "--shared", "--no-checkout", repo, clone); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return clone, nil
}

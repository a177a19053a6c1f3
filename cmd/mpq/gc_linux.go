package main

import (
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
)

// lockFileName matches the name of a queue's lock file (see
// mpq.Stats.LockFile).
var lockFileName = regexp.MustCompile(`^\.mpq-[0-9a-f]{8}\.lock$`)

// orphanAge is how old a lock file of no queue must be before gc removes
// it: a queue being created has its lock file before its queue file.
const orphanAge = time.Minute

// orphanLocks removes the lock files in dir, whose entries are ents, that
// no queue there names, that are older than orphanAge and on which no
// process holds a lock: those of queues removed by hand, or of a process
// that died while creating one.
func (g *gc) orphanLocks(dir string, ents []os.DirEntry) {
	used := map[string]bool{}
	names, _ := mpq.List(dir)
	for _, name := range names {
		if s, err := mpq.Inspect(name, g.e.opts()); err == nil && s.LockFile != "" {
			used[filepath.Base(s.LockFile)] = true
		}
	}
	for _, ent := range ents {
		name := ent.Name()
		if !ent.Type().IsRegular() || !lockFileName.MatchString(name) || used[name] {
			continue
		}
		path := filepath.Join(dir, name)
		if fi, err := os.Lstat(path); err != nil || time.Since(fi.ModTime()) < orphanAge {
			continue
		}
		g.removeUnlocked(path, "lock file "+name+" of no queue")
	}
}

// removeUnlocked removes the file at path, what it is, if no process holds
// a lock on it. It decides and removes holding a lock on all of it, so
// that no process takes one meanwhile: one waiting for the open lock then
// finds the file gone, and looks again.
func (g *gc) removeUnlocked(path, what string) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	all := &unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 0}
	if g.dryRun {
		if unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, all) == nil && all.Type == unix.F_UNLCK {
			g.remove(path, what)
		}
		return
	}
	if unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, all) != nil {
		return // held
	}
	g.remove(path, what)
}

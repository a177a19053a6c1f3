package mpq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/shm"
)

// Remove deletes the named queue. Processes that have it open keep using it
// until they close it; a later Open creates a new queue. Removing a missing
// queue returns an error wrapping fs.ErrNotExist.
func Remove(name string, opts *Options) error {
	s, err := opts.settings()
	if err != nil {
		return err
	}
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return err
	}
	// Opened first, for the id of its lock file; a file that is no queue
	// has none.
	f, ferr := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if ferr == nil {
		defer f.Close()
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	if ferr == nil {
		removeLockFile(f, path)
	}
	return nil
}

// DefaultDir returns the directory of named queues when [Options.Dir] is
// empty: $XDG_RUNTIME_DIR/mpq if that variable names a directory, else
// /dev/shm/mpq-UID, else $TMPDIR/mpq-UID.
func DefaultDir() string { return shm.DefaultDir() }

// List returns the names of the queues in dir (the default directory if
// dir is ""), sorted. A missing directory holds no queues: List returns an
// error wrapping fs.ErrNotExist only if dir was given.
func List(dir string) ([]string, error) {
	given := dir != ""
	if !given {
		dir = DefaultDir()
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !given {
			return nil, nil
		}
		return nil, fmt.Errorf("mpq: list queues: %w", err)
	}
	var names []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), shm.Ext)
		if ok && e.Type().IsRegular() && shm.CheckName(name) == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// RemoveIf removes the named queue if ok, given its Stats, returns nil;
// otherwise it returns ok's error and leaves the queue. No process attaches
// to the queue between the Stats and the removal: one that opens it
// meanwhile waits, then finds it gone (and Open creates a new queue, as
// after Remove). Use it to remove queues only while idle, for example
//
//	err := mpq.RemoveIf("jobs", nil, func(s mpq.Stats) error {
//		if len(s.Procs) > 0 || s.Len > 0 {
//			return errors.New("in use")
//		}
//		return nil
//	})
//
// It needs write access to the queue file, and fails with ErrCorrupt or
// ErrIncompatible on a file it cannot read as a queue ([Remove] removes
// those). A missing queue gives an error wrapping fs.ErrNotExist.
func RemoveIf(name string, opts *Options, ok func(Stats) error) error {
	s, err := opts.settings()
	if err != nil {
		return err
	}
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return err
	}
	f, err := shm.OpenFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mpq: queue %s does not exist in %s: %w", name, s.dir, fs.ErrNotExist)
		}
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), OpenWait)
	defer cancel()
	release, err := lockForRemove(ctx, f, path)
	if err != nil {
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	defer release()
	if !linked(f, path) {
		return fmt.Errorf("mpq: queue %s was removed meanwhile: %w", name, fs.ErrNotExist)
	}
	st, err := inspectFile(name, f)
	if err != nil {
		return err
	}
	if err := ok(st); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	removeLockFile(f, path)
	return nil
}

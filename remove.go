package mpq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/mpq-go/mpq/internal/shm"
)

// Remove deletes the named queue. Processes that have it open keep using it
// until they close it; a later Open creates a new queue. Removing a missing
// queue returns an error wrapping fs.ErrNotExist. A queue file that is a
// symbolic link (which no Open follows) is removed too: the link, never
// its target. The directory is found as [Options.Dir] says, and one that
// is not safe gives ErrUnsafeDir.
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
	var (
		f    *os.File
		ferr = fs.ErrNotExist
	)
	if d, err := shm.OpenDir(s.dir); err == nil {
		f, ferr = d.OpenReadOnly(name + shm.Ext)
		d.Close()
	}
	if ferr == nil {
		defer f.Close()
	}
	if err := shm.Remove(s.dir, queueFiles(name)...); err != nil {
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	if ferr == nil {
		removeLockFile(f, path)
	}
	return nil
}

// queueFiles are the names of the files of queue name in its directory,
// the queue file first: Remove and RemoveIf remove them all, in this
// order, and need only the first to exist.
func queueFiles(name string) []string {
	return []string{name + shm.Ext}
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
	d, err := shm.OpenDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !given {
			return nil, nil
		}
		return nil, fmt.Errorf("mpq: list queues: %w", err)
	}
	defer d.Close()
	ents, err := d.ReadDir()
	if err != nil {
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
// those). A queue file that is a symbolic link is no queue (Open never
// follows one), so nothing can be using it: RemoveIf removes it, the link
// and never its target, without calling ok. A missing queue gives an
// error wrapping fs.ErrNotExist.
func RemoveIf(name string, opts *Options, ok func(Stats) error) error {
	s, err := opts.settings()
	if err != nil {
		return err
	}
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return err
	}
	files := queueFiles(name)
	d, err := shm.OpenDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mpq: queue %s does not exist in %s: %w", name, s.dir, fs.ErrNotExist)
		}
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	defer d.Close()
	f, err := d.OpenFile(files[0])
	if errors.Is(err, shm.ErrSymlink) {
		// Not a queue: nothing can have it open, since Open never
		// follows a symbolic link.
		if err := d.RemoveFiles(files...); err != nil {
			return fmt.Errorf("mpq: remove queue %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mpq: queue %s does not exist in %s: %w", name, s.dir, fs.ErrNotExist)
		}
		if errors.Is(err, shm.ErrNotRegular) {
			return fmt.Errorf("mpq: remove queue %s: %w: %v", name, ErrIncompatible, err)
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
	if !d.Holds(files[0], f) {
		return fmt.Errorf("mpq: queue %s was removed meanwhile: %w", name, fs.ErrNotExist)
	}
	st, err := inspectFile(name, path, f)
	if err != nil {
		return err
	}
	if err := ok(st); err != nil {
		return err
	}
	if err := d.RemoveFiles(files...); err != nil {
		return fmt.Errorf("mpq: remove queue %s: %w", name, err)
	}
	removeLockFile(f, path)
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/mpq-go/mpq"
)

// queueErr turns a library error about the queue name into one that says
// what happened to which queue and what to do about it, with the exit
// status that goes with it.
func (e *env) queueErr(name string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	dir, d := e.queueDir(), e.dirArg()
	switch {
	case errors.Is(err, mpq.ErrNoSpace), errors.Is(err, mpq.ErrTooManyFiles),
		errors.Is(err, mpq.ErrNoMemory), errors.Is(err, mpq.ErrReadOnly):
		// The library's message names the queue and the directory, and
		// says how much and the fix: print all of it.
		return fail(exitFailure, "%v", err)
	case errors.Is(err, mpq.ErrUnsafeDir):
		// A --dir another user could redirect: the library's message names
		// the component, its owner and the fix (it also matches
		// fs.ErrPermission, whose advice below would be wrong).
		return fail(exitFailure, "%v", err)
	case errors.Is(err, mpq.ErrInvalidName):
		return usage("%q is not a queue name (%v); a name is one file name: no '/', no '..', not starting with '.'", name, err)
	case errors.Is(err, fs.ErrNotExist):
		return fail(exitMissing, "queue %s does not exist in %s; create it with: mpq create%s %s", name, dir, d, name)
	case errors.Is(err, fs.ErrExist):
		return fail(exitFailure, "queue %s already exists in %s; see it with: mpq stat%s %s, or remove it with: mpq rm%s %s", name, dir, d, name, d, name)
	case errors.Is(err, fs.ErrPermission):
		return fail(exitFailure, "no permission for queue %s in %s (%v); its owner can widen it by creating it with --mode", name, dir, err)
	case errors.Is(err, mpq.ErrCorrupt):
		return fail(exitFailure, "queue %s in %s cannot be read (%v); a durable queue cut short by a crash is recovered by the next process that opens it (mpq get%s %s); anything else, remove with: mpq rm%s --force %s", name, dir, err, d, name, d, name)
	case errors.Is(err, mpq.ErrIncompatible):
		return fail(exitFailure, "queue %s in %s is not a queue this mpq can read (%v)", name, dir, err)
	case errors.Is(err, mpq.ErrSealed):
		return fail(exitSealed, "queue %s is sealed and takes no more messages; make a new one with: mpq rm%s %s && mpq create%s %s", name, d, name, d, name)
	case errors.Is(err, mpq.ErrTooManyProcesses):
		return fail(exitFailure, "queue %s has every process slot taken; see who with: mpq stat%s %s", name, d, name)
	case errors.Is(err, mpq.ErrInvalidOptions):
		return usage("queue %s: %v", name, err)
	}
	return fmt.Errorf("queue %s: %w", name, err)
}

// open opens the existing queue name, waiting for its open lock (held by
// a process that opens, recovers or removes it) until ctx is done.
func (e *env) open(ctx context.Context, name string) (*mpq.Queue, error) {
	o := e.opts()
	o.NoCreate = true
	q, err := mpq.OpenContext(ctx, name, o)
	return q, e.queueErr(name, err)
}

// inspect reads the queue name without attaching to it.
func (e *env) inspect(name string) (mpq.Stats, error) {
	s, err := mpq.Inspect(name, e.opts())
	return s, e.queueErr(name, err)
}

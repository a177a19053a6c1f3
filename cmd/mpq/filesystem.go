package main

import (
	"fmt"

	"github.com/dustin/go-humanize"

	"github.com/mpq-go/mpq"
)

// fsJSON is how stat --json and ls --json describe the file system a
// queue lives on: mpq.FileSystem with names for scripts.
type fsJSON struct {
	Dir   string `json:"dir"`
	Mount string `json:"mount,omitempty"`
	Type  string `json:"type,omitempty"`
	Size  int64  `json:"size"`
	Free  int64  `json:"free"`
}

// statFS describes the file system of the queue directory dir; nil if it
// cannot be told (no such directory yet, a system mpq.StatFS does not
// know).
func statFS(dir string) *mpq.FileSystem {
	f, err := mpq.StatFS(dir)
	if err != nil {
		return nil
	}
	return &f
}

func fsToJSON(f *mpq.FileSystem) *fsJSON {
	if f == nil {
		return nil
	}
	return &fsJSON{Dir: f.Dir, Mount: f.Mount, Type: f.Type, Size: f.Size, Free: f.Free}
}

// describeFS is "tmpfs at /dev/shm: 64 MiB, 60 MiB free".
func describeFS(f *mpq.FileSystem) string {
	where := "a file system"
	switch {
	case f.Type != "" && f.Mount != "":
		where = f.Type + " at " + f.Mount
	case f.Mount != "":
		where = "the file system at " + f.Mount
	case f.Type != "":
		where = f.Type
	}
	return fmt.Sprintf("%s: %s, %s free", where, humanize.IBytes(uint64(f.Size)), humanize.IBytes(uint64(f.Free)))
}

// unbacked reports whether part of the queue's file has no storage
// allocated (a sparse file): its pages would be allocated on first touch,
// and a full file system would then kill the writer with SIGBUS. (A
// FileSize of 0 is a queue whose file could not be looked at.)
func unbacked(s mpq.Stats) bool { return s.FileSize > 0 && !s.Backed }

// describeFile is "4.0 MiB, all of it backed" or says what is wrong.
func describeFile(s mpq.Stats) string {
	size := humanize.IBytes(uint64(s.FileSize))
	switch {
	case s.FileSize == 0:
		return "unknown"
	case unbacked(s):
		return size + ", NOT all of it backed: a sparse file, whose pages get storage only when touched; the next process to open the queue reserves the rest, or fails if it does not fit"
	}
	return size + ", all of it backed"
}

package mpq

import (
	"fmt"
	"os"
	"time"

	"github.com/mpq-go/mpq/internal/shm"
)

// Stats is a snapshot of a queue's state, read from its header.
type Stats struct {
	Name          string     // queue name; "" if anonymous
	Label         string     // an anonymous queue's Options.Label, on Linux; "" if none
	Capacity      int        // ring size in bytes
	MaxMessage    int        // largest message accepted
	Created       time.Time  // when the queue file was created
	Len           int        // messages waiting, given back ones included
	Used          int        // ring bytes not yet reclaimed (waiting, held or given back)
	Puts          uint64     // messages put since creation
	Gets          uint64     // messages taken since creation, by Get or a first Receive
	Waits         uint64     // times a Put or Get slept waiting
	Recovered     uint64     // locks taken over from processes that died holding them
	InFlight      int        // deliveries held by consumers or given back, not yet done
	Acks          uint64     // deliveries acknowledged
	Redelivered   uint64     // deliveries given back by Nack, an expired lease or a dead consumer
	DeadLettered  uint64     // messages that reached MaxDeliveries (moved to DeadLetter, or dropped)
	Torn          uint64     // damaged records dropped by crash recovery (durable queues)
	Sealed        bool       // Seal was called
	Durable       bool       // the queue is durable (Options.Durable)
	MaxDeliveries int        // Options.MaxDeliveries it was created with; 0 for no limit
	DeadLetter    string     // Options.DeadLetter it was created with
	Procs         []Attached // processes attached now

	// FileSize is the size of the queue file in bytes, and Backed reports
	// whether the file system has storage allocated for all of it. A queue
	// that mpq made is always backed; a file copied sparse, made by an
	// older version, or with a hole punched into it is not, and Open backs
	// it (or fails with ErrNoSpace) before it is used.
	FileSize int64
	Backed   bool
	// Gone are processes that are no longer running but still own part
	// of the queue: a lock they died holding, deliveries, a waiter bit.
	// The next Put, Get or sweep of a live process takes each over.
	Gone []Attached
	// Stale reports that a process died inside Put or Get, so the
	// counters may be off until the next Put or Get recounts them. Only
	// Inspect sets it: Queue.Stats recounts first.
	Stale bool
	// Corrupt is "" while the queue is sound. Once a process found the
	// queue file corrupt (see [ErrCorrupt]), it says what was found and
	// where, by which process and when, as that process recorded it in
	// the file: for example "record at 4096 has state 9". Every call on
	// the queue then fails with ErrCorrupt until it is repaired (a
	// durable queue is, when it is next opened by no other process) or
	// removed; the other fields are the counters as they are. Inspect
	// also reports here positions that no process has found damaged yet.
	Corrupt string
	// LockFile is the path of the queue's lock file, .mpq-ID.lock beside
	// it, where its processes hold the locks that show they are alive (see
	// [Options].Mode); "" for an anonymous queue, which holds them in its
	// own file, and for a handle opened with OpenFile.
	LockFile string
}

// Attached describes a process attached to a queue.
type Attached struct {
	PID      int       // process ID (in the PID namespace of the process that attached)
	Slot     int       // process-table slot
	Since    time.Time // when it attached
	Producer bool      // it has put
	Consumer bool      // it has got

	WaitingData  bool // it sleeps in Get or Receive, waiting for a message
	WaitingSpace bool // it sleeps in Put, waiting for room
	Holding      int  // deliveries it holds (Receive, not yet settled)
	PutLock      bool // it holds the producer lock (inside Put, or died there)
	GetLock      bool // it holds the consumer lock (inside Get, or died there)
}

// Stats returns a snapshot of the queue's counters and attached processes.
// It returns the zero Stats on a closed handle.
func (q *Queue) Stats() Stats {
	if !q.enter() {
		return Stats{}
	}
	defer q.leave()
	c, err := q.r.Counts()
	if err != nil && c.Corrupt == "" {
		return Stats{}
	}
	s := statsOf(q.name, q.r.Geometry(), c)
	if q.name == "" {
		s.Label = shm.LabelOf(q.f)
	}
	s.FileSize, s.Backed = fileBacking(q.f)
	s.LockFile = lockFileOf(q.path, q.r.Geometry())
	if snap, err := q.r.Observe(); err == nil {
		s.Procs, s.Gone = procsOf(snap.Procs), procsOf(snap.Gone)
	}
	return s
}

// String summarizes the stats on one line.
func (s Stats) String() string {
	name := s.Name
	if name == "" {
		name = "(anonymous)"
	}
	sealed := ""
	if s.Sealed {
		sealed = " sealed"
	}
	if s.Corrupt != "" {
		sealed += " CORRUPT: " + s.Corrupt
	}
	return fmt.Sprintf("%s: %d msgs, %d/%d bytes, %d puts, %d gets, %d waits, %d procs%s",
		name, s.Len, s.Used, s.Capacity, s.Puts, s.Gets, s.Waits, len(s.Procs), sealed)
}

// fileBacking returns the size of the queue file f and whether all of it
// has storage.
func fileBacking(f *os.File) (int64, bool) {
	size, allocated, err := shm.Backing(f)
	if err != nil {
		return 0, false
	}
	return size, allocated >= size
}

// A FileSystem describes the file system that holds a queue directory.
type FileSystem struct {
	Dir   string // the directory
	Mount string // where its file system is mounted ("" if unknown)
	Type  string // the file system's type, such as tmpfs or ext4 ("" if unknown)
	Size  int64  // the file system's size in bytes
	Free  int64  // bytes this user may still allocate in it
}

// StatFS describes the file system holding dir (the default directory if
// dir is ""): what a queue made there may take. On systems other than
// Linux, macOS and FreeBSD only Dir is filled in, and the error wraps
// errors.ErrUnsupported.
func StatFS(dir string) (FileSystem, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	fs, err := shm.StatFS(dir)
	if err != nil {
		return FileSystem{Dir: dir}, fmt.Errorf("mpq: file system of %s: %w", dir, err)
	}
	return FileSystem{Dir: fs.Dir, Mount: fs.Mount, Type: fs.Type, Size: fs.Size, Free: fs.Free}, nil
}

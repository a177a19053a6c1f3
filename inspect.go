package mpq

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/liveness"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

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

// Inspect returns the Stats of the named queue in opts.Dir without opening
// it: it maps the file read-only, attaches no process slot, writes nothing
// and takes no lock, so it may look at a queue while it runs, or after
// every process using it has died. Only opts.Dir is used. It returns an
// error wrapping fs.ErrNotExist if there is no such queue, and ErrCorrupt
// or ErrIncompatible for a file it cannot read as a queue.
//
// Unlike [Queue.Stats], Inspect does not repair counters left off by a
// process that died inside Put or Get; Stats.Stale says so.
func Inspect(name string, opts *Options) (Stats, error) {
	s, err := opts.settings()
	if err != nil {
		return Stats{}, err
	}
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return Stats{}, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Stats{}, fmt.Errorf("mpq: queue %s does not exist in %s: %w", name, s.dir, fs.ErrNotExist)
		}
		return Stats{}, fmt.Errorf("mpq: inspect queue %s: %w", name, err)
	}
	defer f.Close()
	return inspectFile(name, f)
}

// inspectFile is Inspect of the queue file f.
func inspectFile(name string, f *os.File) (Stats, error) {
	size, err := shm.Size(f)
	if err != nil {
		return Stats{}, fmt.Errorf("mpq: inspect queue %s: %w", name, err)
	}
	if size < ring.RingOffset || size != int64(int(size)) {
		return Stats{}, fmt.Errorf("%w: queue %s: file of %d bytes is too small", ErrCorrupt, name, size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return Stats{}, fmt.Errorf("mpq: inspect queue %s: map: %w", name, err)
	}
	defer unix.Munmap(mem)
	if inspectMapped != nil {
		inspectMapped(f)
	}
	snap, err := observe(f, mem, size)
	if err != nil {
		return Stats{}, fmt.Errorf("mpq: inspect queue %s: %w", name, err)
	}
	st := statsOf(name, snap.Geometry, snap.Counts)
	st.FileSize, st.Backed = fileBacking(f)
	st.Stale = snap.Stale
	st.Procs, st.Gone = procsOf(snap.Procs), procsOf(snap.Gone)
	return st, nil
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
	release, err := liveness.LockOpen(f, openLockOffset)
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
	return nil
}

// inspectMapped, if set (by tests), runs once Inspect has mapped the file.
var inspectMapped func(f *os.File)

// observe reads the mapping of f. Anyone who can write the file can also
// shrink it under the mapping, which makes reading past the new end fault
// (SIGBUS): that fault becomes ErrCorrupt here instead of killing the
// process.
func observe(f *os.File, mem []byte, size int64) (snap *ring.Snapshot, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// A memory fault, as SetPanicOnFault reports it.
			if fault, ok := r.(interface {
				runtime.Error
				Addr() uintptr
			}); ok {
				snap, err = nil, fmt.Errorf("%w: the file shrank while it was read (fault at %#x)", ErrCorrupt, fault.Addr())
				return
			}
			panic(r)
		}
	}()
	return ring.Observe(mem, size, env{liveness.Observe(f, ring.MaxProcs, ring.SlotOffset)})
}

// statsOf fills the Stats that a queue's geometry and counters give.
func statsOf(name string, g ring.Geometry, c ring.Counts) Stats {
	return Stats{
		Name: name, Capacity: int(g.Capacity), MaxMessageSize: int(g.MaxMessage), Created: g.Created,
		Durable: g.Durable, MaxDeliveries: int(g.MaxDeliveries), DeadLetter: g.DeadLetter,
		Len: int(min(c.Len, 1<<62)), Used: int(c.Used), Puts: c.Puts, Gets: c.Gets,
		Waits: c.Waits, Recovered: c.Recovered, Sealed: c.Sealed,
		InFlight: int(c.InFlight), Acks: c.Acks, Redelivered: c.Redelivered, DeadLettered: c.Dead, Torn: c.Torn,
	}
}

func procsOf(ps []ring.Proc) []Proc {
	var out []Proc
	for _, p := range ps {
		out = append(out, Proc{
			PID: p.PID, Slot: p.Slot, Since: p.Since,
			Producer: p.Role&ring.RoleProducer != 0, Consumer: p.Role&ring.RoleConsumer != 0,
			WaitingData: p.WaitData, WaitingSpace: p.WaitSpace, Holding: p.Holding,
			PutLock: p.PutLock, GetLock: p.GetLock,
		})
	}
	return out
}

package mpq

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

// Inspect returns the Stats of the named queue in opts.Dir without opening
// it: it maps the file read-only, attaches no process slot, writes nothing
// and takes no lock, so it may look at a queue while it runs, or after
// every process using it has died. Only opts.Dir is used. It returns an
// error wrapping fs.ErrNotExist if there is no such queue, and ErrCorrupt
// or ErrIncompatible for a file it cannot read as a queue.
//
// Unlike [Queue.Stats], Inspect does not repair counters left off by a
// process that died inside Put or Get; Stats.Stale says so.
//
// Inspect needs only read permission on the queue file. A user who may not
// write the queue cannot open its lock file either, and so cannot tell a
// live process from a dead one: Stats.Procs then lists every process the
// queue's table records.
func Inspect(name string, opts *Options) (Stats, error) {
	s, err := opts.settings()
	if err != nil {
		return Stats{}, err
	}
	path, err := shm.Path(s.dir, name)
	if err != nil {
		return Stats{}, err
	}
	f, err := shm.OpenReadOnly(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Stats{}, fmt.Errorf("mpq: queue %s does not exist in %s: %w", name, s.dir, fs.ErrNotExist)
		}
		return Stats{}, fmt.Errorf("mpq: inspect queue %s: %w", name, err)
	}
	defer f.Close()
	return inspectFile(name, path, f)
}

// InspectFile is [Inspect] of the queue whose file is f, which it neither
// closes nor attaches to: it maps f read-only, writes nothing and takes no
// lock. f may be any descriptor of a queue, such as one opened through
// /proc/PID/fd/N of a process that holds an anonymous queue (as mpq ls
// does to list them). Stats.Name is "", and Stats.Label is the label of
// an anonymous queue (see [Options].Label): on Linux, what its memfd's name
// says; "" elsewhere. It returns ErrCorrupt or ErrIncompatible for a file
// it cannot read as a queue.
func InspectFile(f *os.File) (Stats, error) {
	st, err := inspectFile(f.Name(), "", f)
	if err != nil {
		return Stats{}, err
	}
	st.Name, st.Label = "", shm.LabelOf(f)
	return st, nil
}

// inspectFile is Inspect of the queue file f at path.
func inspectFile(name, path string, f *os.File) (Stats, error) {
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
	hookInspectMapped(f)
	snap, err := observe(f, mem, size)
	if err != nil {
		return Stats{}, fmt.Errorf("mpq: inspect queue %s: %w", name, err)
	}
	st := statsOf(name, snap.Geometry, snap.Counts)
	st.FileSize, st.Backed = fileBacking(f)
	st.LockFile = lockFileOf(path, snap.Geometry)
	st.Stale = snap.Stale
	st.Procs, st.Gone = procsOf(snap.Procs), procsOf(snap.Gone)
	return st, nil
}

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
	lt, done := lockObserver(f, mem)
	defer done()
	return ring.Observe(mem, size, env{lt})
}

// statsOf fills the Stats that a queue's geometry and counters give.
func statsOf(name string, g ring.Geometry, c ring.Counts) Stats {
	return Stats{
		Name: name, Capacity: int(g.Capacity), MaxMessage: int(g.MaxMessage), Created: g.Created,
		Durable: g.Durable, MaxDeliveries: int(g.MaxDeliveries), DeadLetter: g.DeadLetter,
		Len: int(min(c.Len, 1<<62)), Used: int(c.Used), Puts: c.Puts, Gets: c.Gets,
		Waits: c.Waits, Recovered: c.Recovered, Sealed: c.Sealed,
		InFlight: int(c.InFlight), Acks: c.Acks, Redelivered: c.Redelivered, DeadLettered: c.Dead, Torn: c.Torn,
		Corrupt: c.Corrupt,
	}
}

func procsOf(ps []ring.Proc) []Attached {
	var out []Attached
	for _, p := range ps {
		out = append(out, Attached{
			PID: p.PID, Slot: p.Slot, Since: p.Since,
			Producer: p.Role&ring.RoleProducer != 0, Consumer: p.Role&ring.RoleConsumer != 0,
			WaitingData: p.WaitData, WaitingSpace: p.WaitSpace, Holding: p.Holding,
			PutLock: p.PutLock, GetLock: p.GetLock,
		})
	}
	return out
}

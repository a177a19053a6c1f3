package mpq

import (
	"errors"

	"github.com/mpq-go/mpq/internal/liveness"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

// Errors returned by queue operations. Test for them with [errors.Is]: most
// are wrapped with details. Errors about a queue's existence wrap
// [io/fs.ErrExist] or [io/fs.ErrNotExist] instead.
var (
	// ErrFull is returned by TryPut when the queue has no room for the message.
	ErrFull = ring.ErrFull
	// ErrEmpty is returned by TryGet when no message is waiting.
	ErrEmpty = ring.ErrEmpty
	// ErrTooLarge is returned for a message longer than the queue's
	// maximum message size. Nothing is written.
	ErrTooLarge = ring.ErrTooLarge
	// ErrSealed is returned by Put after Seal.
	ErrSealed = ring.ErrSealed
	// ErrClosed is returned by every method of a closed Queue but Close.
	ErrClosed = ring.ErrClosed
	// ErrCorrupt means the queue file holds values no correct writer could
	// have left: it was damaged or written by something other than mpq.
	//
	// A process that finds a queue corrupt records what it found in the
	// queue file and wakes every waiter of every process; from then on
	// every call on the queue, in every process (Put, Get, the batches,
	// Receive, Ack, Nack, Extend, Seal, Join, and calls blocked in them),
	// fails with an error wrapping ErrCorrupt that says what was found,
	// where, by which process, and how to fix it, until the queue is
	// repaired or removed. A durable queue is repaired when it is next
	// opened by no other process: close it everywhere and open it again,
	// and recovery drops the damaged records (or fails, wrapping
	// ErrCorrupt, if the queue's positions are damaged). A queue in memory
	// has no repair: remove it (mpq rm, or [Remove]) and create it again.
	// [Queue.Stats] and [Inspect] still work, and say what was found in
	// [Stats].Corrupt.
	//
	// A memory fault (the file truncated under the mapping) fails every
	// call of the handle that met it with ErrCorrupt, but is not recorded
	// for other processes: close the handle.
	ErrCorrupt = ring.ErrCorrupt
	// ErrIncompatible means the file is not an mpq queue, or one of another
	// format version or byte order.
	ErrIncompatible = ring.ErrIncompatible
	// ErrInvalidName is returned for a queue name that is empty, longer than
	// 200 bytes, starts with '.', or contains '/', '..' or NUL.
	ErrInvalidName = shm.ErrInvalidName
	// ErrInvalidOptions is returned for Options with impossible values.
	ErrInvalidOptions = errors.New("mpq: invalid options")
	// ErrTooManyProcesses is returned when the 256 slots of a queue's
	// process table are taken: one by each open handle (Open, Create,
	// OpenFile, New) of a live process.
	ErrTooManyProcesses = liveness.ErrNoSlot
	// ErrNilContext is returned by every method that takes a
	// context.Context when it is given nil: pass context.Background() (or
	// context.TODO()) for a call that may wait forever.
	ErrNilContext = errors.New("mpq: nil context.Context")
)

// Errors for resources the system refused. Each error that carries one
// also matches the system's own error number with errors.Is (for example
// ErrNoSpace and syscall.ENOSPC or syscall.EDQUOT), and its message says
// where, how much, and how to fix it. A call that fails with one of them
// leaves nothing behind: no file, no directory it made, no descriptor, no
// mapping, no process slot.
var (
	// ErrNoSpace means the file system (or memory cgroup) cannot hold the
	// queue: its whole file is reserved when it is made, so that a full
	// file system fails the call that makes the queue instead of killing
	// a later Put with SIGBUS.
	ErrNoSpace = shm.ErrNoSpace
	// ErrTooManyFiles means the process (RLIMIT_NOFILE) or the system ran
	// out of file descriptors.
	ErrTooManyFiles = shm.ErrTooManyFiles
	// ErrNoMemory means the system refused to map the queue: the address
	// space limit (RLIMIT_AS), vm.max_map_count, or memory overcommit.
	ErrNoMemory = shm.ErrNoMemory
	// ErrReadOnly means the queue directory is on a read-only file system.
	ErrReadOnly = shm.ErrReadOnly
)

// ErrUnsafeDir means a queue directory that another user could redirect or
// fill, which mpq refuses: one reached through a symbolic link of another
// user, one owned by another user, or one on a path through a directory
// every user may write to without the sticky bit (see [Options.Dir]). The
// error names the component, its owner and the fix; it matches
// fs.ErrPermission too.
var ErrUnsafeDir = shm.ErrUnsafeDir

// Errors returned by connections ([Conn], [Listener], [Dial]).
var (
	// ErrPeerClosed is returned by Send when the other end of the
	// connection was closed or its process is gone. (Recv returns io.EOF.)
	ErrPeerClosed = errors.New("mpq: the other end of the connection is closed")
	// ErrWrongDirection is returned by Recv or Poll on the sending end and
	// by Send on the receiving end of a one-way pipe.
	ErrWrongDirection = errors.New("mpq: wrong direction for this end of a one-way connection")
	// ErrAuth is returned by Accept and Dial when the two sides do not
	// hold the same key (see [ListenOptions].Key), or when a process
	// between them relays the handshake: the MACs bind both processes and
	// the socket file.
	ErrAuth = errors.New("mpq: authentication failed")
	// ErrPeerRejected is returned by Accept and Dial when the process at
	// the other end runs as a user that is not allowed.
	ErrPeerRejected = errors.New("mpq: peer's user not allowed")
	// ErrHandshake is returned by Accept and Dial when the peer does not
	// complete the handshake of this version of mpq: it speaks another
	// protocol, stalls past the handshake timeout, or leaves midway.
	ErrHandshake = errors.New("mpq: connection handshake failed")
)

package mpq

import (
	"errors"

	"mpq/internal/liveness"
	"mpq/internal/ring"
	"mpq/internal/shm"
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
	ErrCorrupt = ring.ErrCorrupt
	// ErrIncompatible means the file is not an mpq queue, or one of another
	// format version or byte order.
	ErrIncompatible = ring.ErrIncompatible
	// ErrInvalidName is returned for a queue name that is empty, longer than
	// 200 bytes, starts with '.', or contains '/', '..' or NUL.
	ErrInvalidName = shm.ErrInvalidName
	// ErrInvalidOptions is returned for Options with impossible values.
	ErrInvalidOptions = errors.New("mpq: invalid options")
	// ErrTooManyProcesses is returned when 256 processes are attached to a
	// queue already.
	ErrTooManyProcesses = liveness.ErrNoSlot
)

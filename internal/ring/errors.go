package ring

import "errors"

// Sentinel errors. The public package re-exports them under the same names.
var (
	ErrFull         = errors.New("mpq: queue is full")
	ErrEmpty        = errors.New("mpq: queue is empty")
	ErrTooLarge     = errors.New("mpq: message larger than the queue's maximum message size")
	ErrSealed       = errors.New("mpq: queue is sealed")
	ErrClosed       = errors.New("mpq: queue handle is closed")
	ErrCorrupt      = errors.New("mpq: queue file is corrupt")
	ErrIncompatible = errors.New("mpq: not a queue file of this format version")
)

// Errors of the shared locks, which the public package translates.
var (
	// ErrBusy means a try-operation found the lock held by a live process
	// for longer than it may wait.
	ErrBusy = errors.New("mpq: queue lock busy")
	// ErrCanceled means the done channel of a blocking operation closed.
	ErrCanceled = errors.New("mpq: wait canceled")
)

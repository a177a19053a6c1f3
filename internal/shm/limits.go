package shm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Errors for resources the system refused. A *LimitError carries one of
// them and the system's error beneath it, so errors.Is matches both.
var (
	ErrNoSpace      = errors.New("mpq: no space for the queue")
	ErrTooManyFiles = errors.New("mpq: out of file descriptors")
	ErrNoMemory     = errors.New("mpq: the system refused the memory")
	ErrReadOnly     = errors.New("mpq: read-only file system")
)

// A LimitError is a refusal of the system, explained: Kind is one of the
// sentinels above, Err the system's error, and the message says what was
// refused and how to fix it.
type LimitError struct {
	Kind error
	Err  error
	Msg  string
}

func (e *LimitError) Error() string        { return e.Msg }
func (e *LimitError) Unwrap() error        { return e.Err }
func (e *LimitError) Is(target error) bool { return target == e.Kind }

// Explain wraps err, the failure of what (for example "create queue jobs in
// /dev/shm/mpq-0"), with the named error and the fix that its system error
// number calls for. Errors of other kinds come back wrapped with what only.
// Errors of the open-file limit, memory, read-only file systems and
// missing permission are explained here; ErrNoSpace with sizes comes from
// Reserve, which knows them, and here only without them.
func Explain(what string, err error) error {
	var limit *LimitError
	if err == nil || errors.As(err, &limit) {
		return err
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("mpq: %s: %w", what, err)
	}
	le := &LimitError{Err: err}
	switch errno {
	case unix.EMFILE:
		le.Kind = ErrTooManyFiles
		le.Msg = fmt.Sprintf("mpq: %s: %v: the process has as many files open as its limit allows (RLIMIT_NOFILE %s): close some, or raise the limit (ulimit -n, LimitNOFILE= in a systemd unit)", what, err, nofile())
	case unix.ENFILE:
		le.Kind = ErrTooManyFiles
		le.Msg = fmt.Sprintf("mpq: %s: %v: the system's table of open files is full: close files, or raise fs.file-max", what, err)
	case unix.ENOMEM:
		le.Kind = ErrNoMemory
		le.Msg = fmt.Sprintf("mpq: %s: %v: the process's address space limit (RLIMIT_AS %s, ulimit -v), vm.max_map_count or the system's memory refused it: use a smaller Capacity, close other queues, or raise the limit", what, err, addrSpace())
	case unix.EROFS:
		le.Kind = ErrReadOnly
		le.Msg = fmt.Sprintf("mpq: %s: %v: set the Dir option (mpq --dir) to a directory on a writable file system", what, err)
	case unix.ENOSPC, unix.EDQUOT:
		le.Kind = ErrNoSpace
		le.Msg = fmt.Sprintf("mpq: %s: %v: free space there, or set the Dir option (mpq --dir) to another file system", what, err)
	case unix.EACCES, unix.EPERM:
		return fmt.Errorf("mpq: %s: %w: this user (uid %d) may not do that there: check the directory's owner and mode, or set the Dir option (mpq --dir) to a directory of this user's", what, err, unix.Getuid())
	default:
		return fmt.Errorf("mpq: %s: %w", what, err)
	}
	return le
}

func nofile() string {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return "unknown"
	}
	return fmt.Sprint(rl.Cur)
}

// ExplainLimit is Explain for a caller that names only refused resources
// (descriptors, memory, space, a read-only file system): it returns the
// explained error for those, and nil for an error of any other kind.
func ExplainLimit(what string, err error) error {
	var limit *LimitError
	if e := Explain(what, err); errors.As(e, &limit) {
		return e
	}
	return nil
}

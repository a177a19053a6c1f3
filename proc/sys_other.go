//go:build unix && !linux

package proc

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"weak"

	"github.com/mpq-go/mpq"
)

// parentPoll is how often a child checks that its parent lives, on systems
// without a parent-death signal.
const parentPoll = 200 * time.Millisecond

// sysProcAttr puts a detached child in a session of its own. Other children
// find out that their parent died by polling (see watchParent).
func sysProcAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return nil
}

// watchParent closes orphaned when the child's parent process has exited,
// which it notices by checking every parentPoll that its parent process ID
// is still parent (an orphan is adopted by init or a subreaper). The check
// that Main makes after it covers a parent that died earlier.
func watchParent(parent int, orphaned chan<- struct{}) {
	go func() {
		for os.Getppid() == parent {
			time.Sleep(parentPoll)
		}
		close(orphaned)
	}()
}

// executable returns the path of this program.
func executable() (string, error) { return os.Executable() }

// payloadFile returns an unlinked temporary file holding data.
func payloadFile(data []byte) (*os.File, error) { return tempPayload(data) }

// Without open-file-description locks, a process loses its locks on a
// queue file when it closes any descriptor of it (see package mpq), so the
// descriptor handed to children is made once per Queue and kept until the
// Queue is garbage: closing it after each Start would make the queue take
// this process for dead.
var (
	heldMu sync.Mutex
	held   = map[weak.Pointer[mpq.Queue]]*os.File{}
)

// queueFile returns the descriptor of q to hand to a child, and whether to
// close it once the child has started.
func queueFile(q *mpq.Queue) (*os.File, bool, error) {
	k := weak.Make(q)
	heldMu.Lock()
	defer heldMu.Unlock()
	if f := held[k]; f != nil {
		return f, false, nil
	}
	f, err := q.File()
	if err != nil {
		return nil, false, err
	}
	held[k] = f
	runtime.AddCleanup(q, func(k weak.Pointer[mpq.Queue]) {
		heldMu.Lock()
		f := held[k]
		delete(held, k)
		heldMu.Unlock()
		f.Close()
	}, k)
	return f, false, nil
}

// sigAbandoned is 0 here: a running task of an abandoned call is not
// told, and runs to its end.
const sigAbandoned = syscall.Signal(0)

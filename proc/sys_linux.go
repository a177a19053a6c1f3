package proc

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
)

// sigParentDied is the signal the kernel sends a child when its parent
// dies: real-time signal 40 (SIGRTMIN+6 in glibc's numbering), which is
// free in Go programs.
const sigParentDied = syscall.Signal(40)

// sigAbandoned is the signal a pool sends a worker running a task of a
// call it abandoned: real-time signal 41, which the worker handles by
// cancelling the task's ctx.
const sigAbandoned = syscall.Signal(41)

// sysProcAttr makes a child receive sigParentDied when this process dies
// (the kernel's parent-death signal), or, if detached, puts it in a session
// of its own.
func sysProcAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Pdeathsig: sigParentDied}
}

// watchParent closes orphaned when the child's parent process has exited.
//
// The kernel sends the parent-death signal whenever the child is given a
// new parent: when the thread that started it exits, the child goes to
// another thread of the same process first (Go's runtime ends a thread when
// a goroutine that locked it returns without unlocking it), and to init or a
// subreaper when the last one exits. So the signal only makes the child
// check whether its parent process is still parent. Signals sent before
// this runs are lost (Go ignores real-time signals nobody asked for), which
// the check that Main makes after it covers.
func watchParent(parent int, orphaned chan<- struct{}) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, sigParentDied)
	go func() {
		for range sigs {
			if os.Getppid() != parent {
				close(orphaned)
				return
			}
		}
	}()
}

// executable returns the path that starts this program again: the kernel's
// link to it, which works even if the file was since removed or replaced.
func executable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	return os.Executable()
}

// payloadFile returns a file holding data, positioned at its start: a
// memfd, or if that fails an unlinked temporary file.
func payloadFile(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("mpq-proc-args", unix.MFD_CLOEXEC)
	if err != nil {
		return tempPayload(data)
	}
	f := os.NewFile(uintptr(fd), "mpq-proc-args")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write arguments: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write arguments: %w", err)
	}
	return f, nil
}

// queueFile returns the descriptor of q to hand to a child, and whether to
// close it once the child has started.
func queueFile(q *mpq.Queue) (*os.File, bool, error) {
	f, err := q.File()
	return f, true, err
}

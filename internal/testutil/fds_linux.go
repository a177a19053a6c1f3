//go:build linux

package testutil

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// OpenFDs returns the descriptors this process has open, each with what it
// refers to (the target of its /proc/self/fd link).
func OpenFDs() (map[int]string, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	self := int(d.Fd())
	d.Close()
	if err != nil {
		return nil, err
	}
	fds := map[int]string{}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd == self {
			continue
		}
		link, _ := os.Readlink("/proc/self/fd/" + n)
		fds[fd] = link
	}
	return fds, nil
}

// FDDiff describes how the descriptors of after differ from those of
// before (both from [OpenFDs]): "+7 memfd:mpq" for one opened since,
// "-5 /tmp/x" for one closed.
func FDDiff(before, after map[int]string) []string {
	var d []string
	for fd, what := range after {
		if w, ok := before[fd]; !ok || w != what {
			d = append(d, fmt.Sprintf("+%d %s", fd, what))
		}
	}
	for fd, what := range before {
		if w, ok := after[fd]; !ok || w != what {
			d = append(d, fmt.Sprintf("-%d %s", fd, what))
		}
	}
	slices.Sort(d)
	return d
}

// Squeeze leaves this process exactly free descriptors to open: it lowers
// the soft RLIMIT_NOFILE to a little above the highest descriptor open and
// fills every free number below it with copies of /dev/null. release
// closes them and restores the limit. Nothing else in the process should
// open descriptors meanwhile.
func Squeeze(free int) (release func(), err error) {
	open, err := OpenFDs()
	if err != nil {
		return nil, err
	}
	top := 0
	for fd := range open {
		top = max(top, fd)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		return nil, err
	}
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fillers := []int{null}
	release = func() {
		for _, fd := range fillers {
			unix.Close(fd)
		}
		fillers = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	}
	lim := syscall.Rlimit{Cur: uint64(max(top, null) + 1 + free + 16), Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		release()
		return nil, err
	}
	for {
		fd, err := unix.FcntlInt(uintptr(null), unix.F_DUPFD_CLOEXEC, 0)
		if err == unix.EMFILE {
			break
		}
		if err != nil {
			release()
			return nil, err
		}
		fillers = append(fillers, fd)
	}
	for range free {
		unix.Close(fillers[len(fillers)-1])
		fillers = fillers[:len(fillers)-1]
	}
	return release, nil
}

// SettleGoroutines waits up to a few seconds for the number of goroutines
// to fall to base, and returns how many more than base run then: 0 unless
// something left goroutines behind. A helper process uses it where a test
// would use [CheckGoroutines].
func SettleGoroutines(base int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > base && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(5 * time.Millisecond)
	}
	return max(0, n-base)
}

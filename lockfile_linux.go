package mpq

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/ring"
)

// lockFiles says whether new named queues keep their locks in a lock file
// (see lockfile.go): on Linux, where OpenFile finds a descriptor's path.
const lockFiles = true

// fdPath is the path of the queue file open as f.
func fdPath(f *os.File) (string, error) {
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "", fmt.Errorf("mpq: find the path of queue file %s: %w", f.Name(), err)
	}
	if strings.HasSuffix(p, " (deleted)") || !strings.HasPrefix(p, "/") {
		return "", errRemoved
	}
	return p, nil
}

// unlocked reports whether no process holds a lock on any byte of f.
func unlocked(f *os.File) bool {
	lk := &unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 0}
	return unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, lk) == nil && lk.Type == unix.F_UNLCK
}

// Boot time, for the start times of processes in /proc.
var (
	bootOnce sync.Once
	bootTime int64 // unix seconds; 0 if unknown
)

// mayUse reports whether the process a records may still be attached to
// the queue file of inode ino: a process of its pid exists,
// started before a's attachment (a pid reused since started after it), and
// maps that file (a copy of a queue file records the processes of the
// original, which map the original). Unsure is yes.
func mayUse(a ring.Attachment, ino uint64) bool {
	if !mayRun(a) {
		return false
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", a.PID))
	if err != nil || len(maps) == 0 {
		return true // not ours to read, or gone meanwhile
	}
	// address perms offset major:minor inode path. Only the inode is
	// compared: the device shown is not always stat's (btrfs shows the
	// superblock's, not the subvolume's; older overlayfs the lower file's),
	// and a wrong match costs a refusal, not a second lock file.
	want := strconv.FormatUint(ino, 10)
	for _, l := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[4] == want {
			return true
		}
	}
	return false
}

// mayRun reports whether the process a records may still be running: a
// process of its pid exists that started before a's attachment (a pid
// reused since started after it). Unsure is yes.
func mayRun(a ring.Attachment) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.PID))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	bootOnce.Do(func() {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "btime "); ok {
				bootTime, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	})
	// Field 22, starttime, in clock ticks (USER_HZ, 100) since boot; the
	// fields are counted after the command's closing parenthesis.
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(fields) < 20 || bootTime == 0 {
		return true
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return true
	}
	started := time.Unix(bootTime, 0).Add(time.Duration(ticks) * 10 * time.Millisecond)
	return !started.After(a.Since.Add(time.Second))
}

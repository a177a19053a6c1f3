//go:build linux

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/shm"
)

// findAnonymous lists the anonymous queues held open by the processes
// this user may inspect: the descriptors in /proc/PID/fd whose link names
// a queue's memfd ("/memfd:mpq (deleted)", "/memfd:mpq:LABEL (deleted)"),
// one queue for each file however many processes hold it. Processes that
// exit meanwhile, and those this user may not look into, are passed over.
func findAnonymous() []*anonQueue {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	type fileKey struct{ dev, ino uint64 }
	found := map[fileKey]*anonQueue{}
	var qs []*anonQueue
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd"
		fds, err := os.ReadDir(dir) // ENOENT, ESRCH, EACCES: gone, or not ours to see
		if err != nil {
			continue
		}
		for _, ent := range fds {
			fd, err := strconv.Atoi(ent.Name())
			if err != nil {
				continue
			}
			link, err := os.Readlink(dir + "/" + ent.Name())
			if err != nil {
				continue
			}
			label, ok := shm.MemfdLabel(link)
			if !ok {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(dir+"/"+ent.Name(), &st) != nil {
				continue
			}
			key := fileKey{uint64(st.Dev), st.Ino}
			q := found[key]
			if q == nil {
				q = &anonQueue{label: label}
				found[key] = q
				qs = append(qs, q)
			}
			q.holders = append(q.holders, anonFD{pid, fd})
		}
	}
	nameAnonymous(qs)
	return qs
}

// inspectFD reads the queue of descriptor h. It returns an error wrapping
// fs.ErrNotExist if the process has closed it or exited.
func inspectFD(h anonFD) (mpq.Stats, error) {
	f, err := os.OpenFile(fdPath(h), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ESRCH) {
		err = fs.ErrNotExist
	}
	if err != nil {
		return mpq.Stats{}, fmt.Errorf("open %s: %w", fdPath(h), err)
	}
	defer f.Close()
	return mpq.InspectFile(f)
}

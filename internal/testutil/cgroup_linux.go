//go:build linux

package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MemoryCgroup makes a memory cgroup below this process's own with a limit
// of limit bytes, on cgroup v2 or v1, and returns a function that moves a
// process into it. The test's cleanup removes the cgroup once its
// processes are gone. Skipped, or failed when CI=true, where no memory
// cgroup can be made.
func MemoryCgroup(t testing.TB, limit int64) (add func(pid int)) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		cannot(t, "read /proc/self/cgroup: "+err.Error())
	}
	var dir, limitFile string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				dir, limitFile = filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max"
				// The controller must be on for the children of our cgroup.
				os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0)
			}
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes"
			}
		}
	}
	if dir == "" {
		cannot(t, "find a memory cgroup in /proc/self/cgroup")
	}
	cg := filepath.Join(dir, fmt.Sprintf("mpq-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		cannot(t, "make a memory cgroup: "+err.Error())
	}
	t.Cleanup(func() {
		// rmdir fails while a process (or a zombie not yet reaped) is in it.
		var err error
		for range 100 {
			if err = os.Remove(cg); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("remove cgroup %s: %v", cg, err)
	})
	if err := os.WriteFile(filepath.Join(cg, limitFile), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		cannot(t, fmt.Sprintf("set %s of %s: %v", limitFile, cg, err))
	}
	return func(pid int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("move process %d into cgroup %s: %v", pid, cg, err)
		}
	}
}

//go:build linux

package bench

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// pythonNotUsed is the Python of a [Machine] when no Python contender was
// selected: the interpreter is not started just to describe it.
const pythonNotUsed = "not used"

// describeMachine collects the machine's description, without Python (see
// [describePython]). A part it cannot find reads "unknown".
func describeMachine() Machine {
	m := Machine{
		CPU: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Kernel: "unknown", Go: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		Python: pythonNotUsed,
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	return m
}

// describePython returns the version of the interpreter running script,
// or "unavailable: " and the error. It starts the interpreter, which can
// take seconds on a loaded machine, so [run] calls it only when a Python
// contender is selected.
func describePython(ctx context.Context, python, script string) string {
	v, err := pythonVersion(ctx, python, script)
	if err != nil {
		return "unavailable: " + err.Error()
	}
	return v
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

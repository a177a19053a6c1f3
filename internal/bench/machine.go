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

// describeMachine collects the machine's description. A part it cannot
// find reads "unknown" (for Python, the error).
func describeMachine(ctx context.Context, python, script string) Machine {
	m := Machine{
		CPU: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Kernel: "unknown", Go: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	v, err := pythonVersion(ctx, python, script)
	if err != nil {
		v = "unavailable: " + err.Error()
	}
	m.Python = v
	return m
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

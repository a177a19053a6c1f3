//go:build linux

package main

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// machine describes where the figures were measured.
type machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Python     string `json:"python"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
}

// describeMachine collects the machine's description. A part it cannot
// find reads "unknown" (for Python, the error).
func describeMachine(ctx context.Context, python, script string) machine {
	m := machine{
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

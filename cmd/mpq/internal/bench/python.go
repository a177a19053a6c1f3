//go:build linux

package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// baselineScript is baseline.py, written to a temporary file for each
// harness run so that the harness binary works from any directory.
//
//go:embed baseline.py
var baselineScript []byte

// writeScript writes baseline.py into a new temporary directory and returns
// its path and a function removing the directory.
func writeScript() (string, func(), error) {
	dir, err := os.MkdirTemp("", "mpq-bench-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	path := filepath.Join(dir, "baseline.py")
	if err := os.WriteFile(path, baselineScript, 0o644); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// pyBackend runs baseline.py for one transport ("queue" or "pipe") of
// Python's multiprocessing module, once per measurement.
type pyBackend struct {
	python, script, transport string
}

func (p *pyBackend) supports(r row) bool {
	if r.pool() {
		return false
	}
	switch r.kind {
	case throughput:
		return p.transport == "queue" || r.producers == 1 && r.consumers == 1
	case roundTrip:
		return true
	}
	return false
}

func (p *pyBackend) measure(ctx context.Context, r row, lim limits) (Sample, error) {
	args := []string{"--transport", p.transport, "--size", strconv.Itoa(r.size),
		"--count", strconv.Itoa(lim.msgs), "--seconds", strconv.FormatFloat(lim.time.Seconds(), 'f', -1, 64)}
	if r.kind == roundTrip {
		args = append([]string{"rtt", "--warmup", strconv.Itoa(lim.warmup),
			"--hist", fmt.Sprintf("%d,%d,%d", histMinNS, histPerDecade, histBuckets)}, args...)
	} else {
		args = append([]string{"tput", "--producers", strconv.Itoa(r.producers), "--consumers", strconv.Itoa(r.consumers)}, args...)
	}
	var s Sample
	err := runPython(ctx, p.python, p.script, lim.time+childTimeout, &s, args...)
	if err == nil && s.Msgs <= 0 {
		err = fmt.Errorf("python %s: no messages moved", p.transport)
	}
	return s, err
}

// pythonVersion asks the interpreter for its version.
func pythonVersion(ctx context.Context, python, script string) (string, error) {
	var v struct{ Python string }
	err := runPython(ctx, python, script, 30*time.Second, &v, "version")
	return v.Python, err
}

// runPython runs the script with args and decodes its last line of output
// into v. The interpreter runs in its own process group, killed as a whole
// (with the workers it forked) on timeout or cancellation.
func runPython(ctx context.Context, python, script string, timeout time.Duration, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{script}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stderr tail
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", python, args, err, strings.TrimSpace(stderr.String()))
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], v); err != nil {
		return fmt.Errorf("%s %v: bad output %q: %w", python, args, out, err)
	}
	return nil
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// mpqBin is the real mpq binary, built once by TestMain for the tests that
// drive it (script tests, the terminal test, the metrics test).
var mpqBin string

// TestMain lets the test binary serve as the tests' child processes
// (proc.Main runs a child's function and exits), then builds mpq and runs
// the tests.
func TestMain(m *testing.M) {
	proc.Main()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mpq-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	mpqBin = filepath.Join(dir, "mpq")
	build := exec.Command("go", "build", "-o", mpqBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mpq:", err)
		return 1
	}
	return m.Run()
}

// createQueue creates queue name with opts, failing the test if it cannot,
// and closes it when the test ends (Close it sooner to detach).
func createQueue(t testing.TB, name string, opts *mpq.Options) *mpq.Queue {
	t.Helper()
	q, err := mpq.Create(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

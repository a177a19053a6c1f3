package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	helper "github.com/mpq-go/mpq/internal/testutil"
)

// TestHelperProcess runs the helper role of a process the tests started
// with helper.Start (this test binary again), and exits; otherwise it
// does nothing.
func TestHelperProcess(t *testing.T) { helper.RunHelper(t) }

// mpqBin is the real mpq binary, built once by TestMain for the tests that
// drive it (script tests, the terminal test, the metrics test).
var mpqBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if helper.IsHelper() {
		return m.Run() // a helper process (TestHelperProcess) needs no mpq
	}
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

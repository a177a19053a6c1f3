//go:build mpqhooks

package mpq

import (
	"errors"
	"os"
	"testing"
)

// A queue file shrunk by someone else while Inspect reads it gives
// ErrCorrupt, not a crash (SIGBUS) of the inspecting process.
func TestInspectFileShrinks(t *testing.T) {
	dir := t.TempDir()
	q, err := Create("q", &Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	inspectMapped = func(f *os.File) {
		if err := os.Truncate(f.Name(), 0); err != nil {
			t.Error(err)
		}
	}
	defer func() { inspectMapped = nil }()
	if _, err := Inspect("q", &Options{Dir: dir}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Inspect of a file truncated under it: %v; want ErrCorrupt", err)
	}
}

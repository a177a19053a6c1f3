package main

import (
	"os"
	"testing"
)

// At the root of the mpq repository, and only there, bench writes the
// results files the README shows by default.
func TestAtRepoRoot(t *testing.T) {
	for _, tc := range []struct {
		gomod string // "" for none
		want  bool
	}{
		{"module github.com/mpq-go/mpq\n\ngo 1.26.0\n", true},
		{"// the library\nmodule \"github.com/mpq-go/mpq\"\n", true},
		{"module github.com/mpq-go/mpq/cmd/mpq\n", false},
		{"module example.com/app\n", false},
		{"", false},
	} {
		t.Chdir(t.TempDir())
		if tc.gomod != "" {
			if err := os.WriteFile("go.mod", []byte(tc.gomod), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := atRepoRoot(); got != tc.want {
			t.Errorf("atRepoRoot() with go.mod %q = %v; want %v", tc.gomod, got, tc.want)
		}
	}
}

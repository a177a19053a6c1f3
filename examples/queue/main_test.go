package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMain lets the test binary play the writer and the reader when run
// re-executes it, as the real program does.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := child(role, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestQueueExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	var got []string
	pids := map[string]string{}
	line := regexp.MustCompile(`^(parent|writer|reader) (\d+): (.*)$`)
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q in:\n%s", l, out.String())
		}
		if p, ok := pids[m[1]]; ok && p != m[2] {
			t.Errorf("%s printed two PIDs: %s and %s", m[1], p, m[2])
		}
		pids[m[1]] = m[2]
		if m[1] == "reader" {
			got = append(got, m[3])
		}
	}
	want := []string{"got A", "got B", "got C", "queue sealed and empty, done"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("reader printed %q; want %q", got, want)
	}
	if len(pids) != 3 || pids["parent"] == pids["reader"] || pids["reader"] == pids["writer"] || pids["parent"] == pids["writer"] {
		t.Errorf("want three distinct processes, got %v", pids)
	}
	if pids["parent"] != fmt.Sprint(os.Getpid()) {
		t.Errorf("parent PID %s; want %d", pids["parent"], os.Getpid())
	}
}

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// build builds this program and returns the path of the binary.
func build(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the example: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "example")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runProgram runs the program and returns its output lines and its PID.
func runProgram(t *testing.T, bin string) ([]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out.String())
	}
	return strings.Split(strings.TrimSpace(out.String()), "\n"), cmd.Process.Pid
}

func TestPipeExample(t *testing.T) {
	bin := build(t)
	lines, pid := runProgram(t, bin)
	text := strings.Join(lines, "\n")
	patterns := []*regexp.Regexp{
		regexp.MustCompile(`^parent (\d+): started sender (\d+) and receiver (\d+)$`),
		regexp.MustCompile(`^sender (\d+): sending (\d)$`),
		regexp.MustCompile(`^receiver (\d+): got (\d)$`),
		regexp.MustCompile(`^receiver (\d+): sender closed its end, done$`),
		regexp.MustCompile(`^parent (\d+): both done$`),
	}
	var started []string
	var sent, got []string
	pids := map[int]map[string]bool{} // pattern -> PIDs that printed it
	at := map[int]int{}               // pattern -> line of its last match
	for i, l := range lines {
		k := slices.IndexFunc(patterns, func(p *regexp.Regexp) bool { return p.MatchString(l) })
		if k < 0 {
			t.Fatalf("unexpected line %q in:\n%s", l, text)
		}
		at[k] = i
		m := patterns[k].FindStringSubmatch(l)
		if pids[k] == nil {
			pids[k] = map[string]bool{}
		}
		pids[k][m[1]] = true
		switch k {
		case 0:
			started = m[1:]
		case 1:
			sent = append(sent, m[2])
		case 2:
			got = append(got, m[2])
		}
	}
	if len(started) != 3 {
		t.Fatalf("no start line in:\n%s", text)
	}
	parent, snd, rcv := started[0], started[1], started[2]
	if parent != fmt.Sprint(pid) || parent == snd || parent == rcv || snd == rcv {
		t.Errorf("parent %d, sender and receiver: %v; want three distinct processes", pid, started)
	}
	for k, who := range map[int]string{1: snd, 2: rcv, 3: rcv, 4: parent} {
		if len(pids[k]) != 1 || !pids[k][who] {
			t.Errorf("lines matching %v came from %v; want only %s", patterns[k], pids[k], who)
		}
	}
	want := []string{"0", "1", "2", "3", "4"}
	if !slices.Equal(sent, want) || !slices.Equal(got, want) {
		t.Errorf("sender sent %v, receiver got %v; want %v for both", sent, got, want)
	}
	if !(at[2] < at[3] && at[3] < at[4] && at[4] == len(lines)-1) {
		t.Errorf("lines out of order:\n%s", text)
	}
}

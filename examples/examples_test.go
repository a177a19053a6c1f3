package examples_test

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

// An exampleCase is what one example program prints: patterns[0] is the
// parent's line naming it and its two children, (\d+) first in every
// pattern the PID of the process that prints it.
type exampleCase struct {
	dir      string           // the command, under examples/
	patterns []*regexp.Regexp // every line matches one
	who      map[int]int      // pattern -> which of parent (0), first (1) or second (2) child prints it
	values   [2]int           // the patterns of the lines that send and receive a value (its 2nd submatch)
	want     []string         // the values sent, and received, in order
	order    []int            // patterns whose last lines come in this order, the last one last
	check    func(t *testing.T, line string, m, started []string)
}

var exampleCases = []exampleCase{{
	dir: "queue",
	patterns: []*regexp.Regexp{
		regexp.MustCompile(`^parent (\d+): started writer (\d+) and reader (\d+)$`),
		regexp.MustCompile(`^writer (\d+): putting ([ABC])$`),
		regexp.MustCompile(`^reader (\d+) got ([ABC]) from writer (\d+)$`),
		regexp.MustCompile(`^parent (\d+): writer done, sealing the queue$`),
		regexp.MustCompile(`^reader (\d+): queue sealed and empty, done$`),
		regexp.MustCompile(`^parent (\d+): reader done$`),
	},
	who:    map[int]int{1: 1, 2: 2, 3: 0, 4: 2, 5: 0},
	values: [2]int{1, 2},
	want:   []string{"A", "B", "C"},
	// The parent seals after the writer is done, the reader stops after
	// that, and the parent reports last.
	order: []int{1, 3, 4, 5},
	check: func(t *testing.T, line string, m, started []string) {
		if len(m) == 4 && (m[1] != started[2] || m[3] != started[1]) {
			t.Errorf("line %q: want reader %s and writer %s", line, started[2], started[1])
		}
	},
}, {
	dir: "pipe",
	patterns: []*regexp.Regexp{
		regexp.MustCompile(`^parent (\d+): started sender (\d+) and receiver (\d+)$`),
		regexp.MustCompile(`^sender (\d+): sending (\d)$`),
		regexp.MustCompile(`^receiver (\d+): got (\d)$`),
		regexp.MustCompile(`^receiver (\d+): sender closed its end, done$`),
		regexp.MustCompile(`^parent (\d+): both done$`),
	},
	who:    map[int]int{1: 1, 2: 2, 3: 2, 4: 0},
	values: [2]int{1, 2},
	want:   []string{"0", "1", "2", "3", "4"},
	order:  []int{2, 3, 4},
}}

// TestExamples builds each example command, runs it, and checks who
// printed what, and in which order.
func TestExamples(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the examples: %v", err)
	}
	for _, c := range exampleCases {
		t.Run(c.dir, func(t *testing.T) {
			lines, pid := runExample(t, gobin, c.dir)
			c.verify(t, lines, fmt.Sprint(pid))
		})
	}
}

// runExample builds the command in dir and runs it; it returns its output
// lines and its PID.
func runExample(t *testing.T, gobin, dir string) ([]string, int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), dir)
	if out, err := exec.Command(gobin, "build", "-o", bin, "./"+dir).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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

// verify checks the output lines of the example whose parent is pid.
func (c exampleCase) verify(t *testing.T, lines []string, pid string) {
	text := strings.Join(lines, "\n")
	var started []string
	var values [2][]string
	pids := map[int]map[string]bool{} // pattern -> PIDs that printed it
	at := map[int]int{}               // pattern -> line of its last match
	for i, l := range lines {
		k := slices.IndexFunc(c.patterns, func(p *regexp.Regexp) bool { return p.MatchString(l) })
		if k < 0 {
			t.Fatalf("unexpected line %q in:\n%s", l, text)
		}
		at[k] = i
		m := c.patterns[k].FindStringSubmatch(l)
		if pids[k] == nil {
			pids[k] = map[string]bool{}
		}
		pids[k][m[1]] = true
		switch k {
		case 0:
			started = m[1:]
		case c.values[0]:
			values[0] = append(values[0], m[2])
		case c.values[1]:
			values[1] = append(values[1], m[2])
		}
		if c.check != nil && k != 0 && len(started) == 3 {
			c.check(t, l, m, started)
		}
	}
	if len(started) != 3 {
		t.Fatalf("no start line in:\n%s", text)
	}
	if started[0] != pid || started[0] == started[1] || started[0] == started[2] || started[1] == started[2] {
		t.Errorf("parent %s and its children: %v; want three distinct processes", pid, started)
	}
	for k, i := range c.who {
		if len(pids[k]) != 1 || !pids[k][started[i]] {
			t.Errorf("lines matching %v came from %v; want only %s", c.patterns[k], pids[k], started[i])
		}
	}
	if !slices.Equal(values[0], c.want) || !slices.Equal(values[1], c.want) {
		t.Errorf("sent %v, received %v; want %v for both", values[0], values[1], c.want)
	}
	for i := 1; i < len(c.order); i++ {
		if at[c.order[i-1]] >= at[c.order[i]] {
			t.Errorf("lines out of order:\n%s", text)
		}
	}
	if at[c.order[len(c.order)-1]] != len(lines)-1 {
		t.Errorf("the last line is not the parent's last:\n%s", text)
	}
}

// TestPoolExample runs examples/pool: a worker killed midway is replaced,
// and the parent gets every result, checked against a sieve.
func TestPoolExample(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the examples: %v", err)
	}
	lines, pid := runExample(t, gobin, "pool")
	text := strings.Join(lines, "\n")
	ready := regexp.MustCompile(`^worker (\d+): ready$`)
	start := regexp.MustCompile(`^parent (\d+): pool of workers (\d+) and (\d+), counting the primes below 3000 numbers$`)
	kill := regexp.MustCompile(`^parent (\d+): killing worker (\d+) with SIGKILL, \d+ of 3000 tasks done$`)
	end := regexp.MustCompile(`^parent (\d+): all 3000 results back, in order and correct; worker (\d+) was replaced by (\d+); [01] task\(s\) run again, none lost$`)
	var workers []string
	var started, killed, ended []string
	for _, l := range lines {
		switch {
		case ready.MatchString(l):
			workers = append(workers, ready.FindStringSubmatch(l)[1])
		case start.MatchString(l):
			started = start.FindStringSubmatch(l)
		case kill.MatchString(l):
			killed = kill.FindStringSubmatch(l)
		case end.MatchString(l):
			ended = end.FindStringSubmatch(l)
		default:
			t.Fatalf("unexpected line %q in:\n%s", l, text)
		}
	}
	if started == nil || killed == nil || ended == nil || lines[len(lines)-1] != ended[0] {
		t.Fatalf("missing lines, or the last is not the summary:\n%s", text)
	}
	if p := fmt.Sprint(pid); started[1] != p || killed[1] != p || ended[1] != p {
		t.Errorf("parent lines not from the parent %s:\n%s", p, text)
	}
	if killed[2] != started[2] && killed[2] != started[3] || ended[2] != killed[2] {
		t.Errorf("the killed worker is not one of the pool's:\n%s", text)
	}
	if len(workers) != 3 || !slices.Contains(workers, ended[3]) || ended[3] == started[2] || ended[3] == started[3] {
		t.Errorf("workers ready: %v; want the two first and the replacement %s:\n%s", workers, ended[3], text)
	}
}

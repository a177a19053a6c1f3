package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/mpq-go/mpq"
)

const topMiB = 1 << 20

func TestTopRows(t *testing.T) {
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	q := func(name string, s mpq.Stats) topQueue {
		if s.Capacity == 0 {
			s.Capacity = 4 * topMiB
		}
		if s.Created.IsZero() {
			s.Created = created
		}
		return topQueue{name: name, stats: s}
	}
	// plain is the row of a queue with nothing in it and no rates.
	plain := func(name string) topRow {
		return topRow{name: name, depth: "0", used: "0% of 4 MiB", procs: "0", held: "0"}
	}
	with := func(r topRow, f func(*topRow)) topRow { f(&r); return r }
	corrupt := fmt.Errorf("mpq: inspect queue bad: %w", mpq.ErrCorrupt)

	tests := []struct {
		name      string
		prev, cur []topQueue
		elapsed   time.Duration
		want      []topRow
	}{{
		name: "first refresh has no rates",
		cur:  []topQueue{q("a", mpq.Stats{Len: 3, Used: 48, Puts: 5, Gets: 2}), q("b", mpq.Stats{})},
		want: []topRow{
			with(plain("a"), func(r *topRow) { r.depth, r.used = "3", "<1% of 4 MiB" }),
			plain("b"),
		},
	}, {
		name:    "rates from the deltas",
		prev:    []topQueue{q("a", mpq.Stats{Puts: 100, Gets: 0})},
		cur:     []topQueue{q("a", mpq.Stats{Puts: 150, Gets: 20})},
		elapsed: 500 * time.Millisecond,
		want:    []topRow{with(plain("a"), func(r *topRow) { r.in, r.out = "100", "40" })},
	}, {
		name:    "idle queue rates zero",
		prev:    []topQueue{q("a", mpq.Stats{Puts: 7, Gets: 7})},
		cur:     []topQueue{q("a", mpq.Stats{Puts: 7, Gets: 7})},
		elapsed: time.Second,
		want:    []topRow{with(plain("a"), func(r *topRow) { r.in, r.out = "0", "0" })},
	}, {
		name:    "new queue has no rates yet",
		prev:    []topQueue{q("a", mpq.Stats{})},
		cur:     []topQueue{q("a", mpq.Stats{}), q("new", mpq.Stats{Puts: 9})},
		elapsed: time.Second,
		want: []topRow{
			with(plain("a"), func(r *topRow) { r.in, r.out = "0", "0" }),
			plain("new"),
		},
	}, {
		name:    "recreated queue has no rates",
		prev:    []topQueue{q("a", mpq.Stats{Puts: 10})},
		cur:     []topQueue{q("a", mpq.Stats{Puts: 20, Created: created.Add(time.Second)})},
		elapsed: time.Second,
		want:    []topRow{plain("a")},
	}, {
		name:    "counters going back give no rates",
		prev:    []topQueue{q("a", mpq.Stats{Puts: 10, Gets: 10})},
		cur:     []topQueue{q("a", mpq.Stats{Puts: 12, Gets: 3})},
		elapsed: time.Second,
		want:    []topRow{plain("a")},
	}, {
		name:    "no time elapsed gives no rates",
		prev:    []topQueue{q("a", mpq.Stats{Puts: 1})},
		cur:     []topQueue{q("a", mpq.Stats{Puts: 2})},
		elapsed: 0,
		want:    []topRow{plain("a")},
	}, {
		name:    "unreadable before gives no rates",
		prev:    []topQueue{{name: "a", err: corrupt}},
		cur:     []topQueue{q("a", mpq.Stats{Puts: 2})},
		elapsed: time.Second,
		want:    []topRow{plain("a")},
	}, {
		name:    "slow and fast rates",
		prev:    []topQueue{q("a", mpq.Stats{Puts: 0, Gets: 0})},
		cur:     []topQueue{q("a", mpq.Stats{Puts: 1, Gets: 2_500_000})},
		elapsed: 2 * time.Second,
		want:    []topRow{with(plain("a"), func(r *topRow) { r.in, r.out = "0.5", "1.2M" })},
	}, {
		name: "an unreadable queue shows its error",
		cur:  []topQueue{q("a", mpq.Stats{}), {name: "bad", err: corrupt}},
		want: []topRow{plain("a"), {name: "bad", state: "inspect queue bad: " + mpq.ErrCorrupt.Error(), err: true}},
	}, {
		name: "waiting processes, held deliveries and state",
		cur: []topQueue{q("a", mpq.Stats{
			Len: 1, Used: 8 * topMiB, Capacity: 64 * topMiB, InFlight: 4,
			Sealed: true, Durable: true, Stale: true,
			Procs: []mpq.Attached{
				{PID: 1, WaitingData: true}, {PID: 2, WaitingSpace: true},
				{PID: 3, WaitingData: true}, {PID: 4, Holding: 4},
			},
			Gone: []mpq.Attached{{PID: 5}, {PID: 6}},
		})},
		want: []topRow{{
			name: "a", depth: "1", used: "12% of 64 MiB", procs: "4", wait: "2 get, 1 put", held: "4",
			state: "sealed, durable, stale, 2 gone", warn: true,
		}},
	}, {
		name: "only blocked producers, only sealed",
		cur: []topQueue{q("a", mpq.Stats{
			Len: 1024, Used: 4 * topMiB, Sealed: true,
			Procs: []mpq.Attached{{PID: 1, WaitingSpace: true}},
		})},
		want: []topRow{{
			name: "a", depth: "1024", used: "100% of 4 MiB", procs: "1", wait: "1 put", held: "0", state: "sealed",
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := topRows(tt.prev, tt.cur, tt.elapsed)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestTopRate(t *testing.T) {
	tests := []struct {
		r    float64
		want string
	}{
		{0, "0"}, {0.04, "0.0"}, {0.5, "0.5"}, {9.94, "9.9"}, {10, "10"}, {42.4, "42"},
		{999, "999"}, {1000, "1.0k"}, {12_345, "12.3k"}, {2.5e6, "2.5M"}, {3e9, "3.0G"},
	}
	for _, tt := range tests {
		if got := topRate(tt.r); got != tt.want {
			t.Errorf("topRate(%v): got %v; want %v", tt.r, got, tt.want)
		}
	}
}

func TestTopBytes(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"}, {4 * topMiB, "4 MiB"},
		{64 * topMiB, "64 MiB"}, {3 << 29, "1.5 GiB"}, {1 << 40, "1 TiB"},
	}
	for _, tt := range tests {
		if got := topBytes(tt.n); got != tt.want {
			t.Errorf("topBytes(%v): got %v; want %v", tt.n, got, tt.want)
		}
	}
}

// topPlainStyles are topStyles that add no escape sequences.
func topPlainStyles() topStyles { return newTopStyles(lipgloss.NewRenderer(io.Discard)) }

func TestTopRenderFits(t *testing.T) {
	long := strings.Repeat("very-long-queue-name-", 5)
	rows := topRows(nil, []topQueue{
		{name: long, stats: mpq.Stats{Len: 12345, Capacity: 4 * topMiB, Sealed: true, Durable: true}},
		{name: "short", stats: mpq.Stats{Capacity: 4 * topMiB}},
		{name: "broken", err: errors.New("mpq: " + strings.Repeat("a long complaint ", 20))},
	}, 0)
	for _, width := range []int{200, 120, 80, 60, 30, 1} {
		lines := topRender(rows, width, 0, topPlainStyles())
		if got, want := len(lines), 1+len(rows); got != want {
			t.Fatalf("width %d: got %v lines; want %v", width, got, want)
		}
		for _, l := range lines {
			if got := ansi.StringWidth(l); got > width {
				t.Errorf("width %d: got a line %v wide; want at most %v: %q", width, got, width, l)
			}
		}
	}

	// Wide enough: nothing is cut.
	lines := topRender(rows, 250, 0, topPlainStyles())
	if !strings.HasPrefix(lines[1], long+"  ") || !strings.HasSuffix(lines[1], "sealed, durable") {
		t.Errorf("got %q; want the whole name and state", lines[1])
	}
	// At 80 columns the name gives way, STATE keeps a few words, and
	// the error follows the name.
	lines = topRender(rows, 80, 0, topPlainStyles())
	if name := strings.Fields(lines[1])[0]; !strings.HasSuffix(name, "…") || len(name) >= len(long) {
		t.Errorf("got name %q; want %q cut", name, long)
	}
	if !strings.HasSuffix(lines[1], "sealed, durable") {
		t.Errorf("got %q; want it to end with the state", lines[1])
	}
	if !strings.HasPrefix(strings.Fields(lines[3])[1], "a") || !strings.HasSuffix(lines[3], "…") {
		t.Errorf("got %q; want the error after the name, cut", lines[3])
	}
}

func TestTopRenderHeight(t *testing.T) {
	var queues []topQueue
	for i := range 10 {
		queues = append(queues, topQueue{name: fmt.Sprintf("q%02d", i), stats: mpq.Stats{Capacity: 4096}})
	}
	rows := topRows(nil, queues, 0)
	tests := []struct {
		height    int
		wantLines int
		wantLast  string
	}{
		{0, 11, "q09"},
		{11, 11, "q09"},
		{10, 10, "… and 2 more"},
		{3, 3, "… and 9 more"},
		{2, 2, "… and 10 more"},
		{1, 1, "NAME"},
	}
	for _, tt := range tests {
		lines := topRender(rows, 80, tt.height, topPlainStyles())
		if len(lines) != tt.wantLines || !strings.HasPrefix(lines[len(lines)-1], tt.wantLast) {
			t.Errorf("height %d: got %d lines ending %q; want %d ending %q",
				tt.height, len(lines), lines[len(lines)-1], tt.wantLines, tt.wantLast)
		}
	}
}

func TestTopModel(t *testing.T) {
	start := time.Now()
	snaps := []topSnapshot{
		{at: start, queues: []topQueue{{name: "jobs", stats: mpq.Stats{Len: 1, Puts: 10, Capacity: 4 * topMiB}}}},
		{at: start.Add(2 * time.Second), queues: []topQueue{{name: "jobs", stats: mpq.Stats{Len: 5, Puts: 30, Gets: 16, Capacity: 4 * topMiB}}}},
		{at: start.Add(3 * time.Second), err: errors.New("mpq: list queues: permission denied")},
	}
	taken := 0
	m := newTopModel("/queues", time.Second, lipgloss.NewRenderer(io.Discard), func() topSnapshot {
		taken++
		return snaps[taken-1]
	})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 20})
	if !strings.Contains(m.View(), "reading the queues") {
		t.Errorf("before the first refresh: got %q; want it to say it is reading", m.View())
	}

	// Init takes the first snapshot; each snapshot asks for a tick; each
	// tick for a snapshot.
	msg := m.Init()()
	for i := range 3 {
		if _, ok := msg.(topSnapMsg); !ok {
			t.Fatalf("refresh %d: got %T; want topSnapMsg", i, msg)
		}
		_, cmd := m.Update(msg)
		if cmd == nil {
			t.Fatalf("refresh %d: got no command; want the tick", i)
		}
		view := m.View()
		switch i {
		case 0:
			if !strings.Contains(view, "1 queue ") || !topHasLine(view, "jobs", "1") {
				t.Errorf("first refresh: got\n%s\nwant the header and jobs at depth 1", view)
			}
		case 1:
			// 20 puts and 16 gets in 2 seconds.
			if got := m.rows[0]; got.depth != "5" || got.in != "10" || got.out != "8.0" {
				t.Errorf("second refresh: got %+v; want depth 5, in 10, out 8.0", got)
			}
		case 2:
			if !strings.Contains(view, "list queues: permission denied") {
				t.Errorf("failed listing: got\n%s\nwant the error", view)
			}
		}
		if i < 2 {
			_, cmd = m.Update(topTickMsg{})
			msg = cmd()
		}
	}
	if taken != 3 {
		t.Errorf("got %v snapshots taken; want 3", taken)
	}
	for _, line := range strings.Split(m.View(), "\n") {
		if w := ansi.StringWidth(line); w > 100 {
			t.Errorf("got a line %v wide; want at most 100: %q", w, line)
		}
	}

	keys := []struct {
		key  tea.KeyMsg
		quit bool
	}{
		{tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}, true},
		{tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("Q")}, true},
		{tea.KeyMsg{Type: tea.KeyCtrlC}, true},
		{tea.KeyMsg{Type: tea.KeyEsc}, true},
		{tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("x")}, false},
		{tea.KeyMsg{Type: tea.KeyEnter}, false},
	}
	for _, k := range keys {
		_, cmd := m.Update(k.key)
		quit := false
		if cmd != nil {
			_, quit = cmd().(tea.QuitMsg)
		}
		if quit != k.quit {
			t.Errorf("key %v: got quit %v; want %v", k.key, quit, k.quit)
		}
	}
}

// topHasLine reports whether screen has a line whose first fields are
// fields.
func topHasLine(screen string, fields ...string) bool {
	for _, line := range strings.Split(screen, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}

func TestTopUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tests := []struct {
		name   string
		args   []string
		stdout io.Writer
		want   []string
	}{
		{"buffer", []string{"top", "--dir", dir}, new(bytes.Buffer),
			[]string{"not a terminal", "mpq ls --dir " + dir + "'", "mpq ls --dir " + dir + " --json"}},
		{"file", []string{"top", "--dir", dir}, file, []string{"not a terminal", "mpq ls"}},
		{"zero interval", []string{"top", "--interval", "0"}, new(bytes.Buffer), []string{"--interval must be positive"}},
		{"negative interval", []string{"top", "--interval", "-1s"}, new(bytes.Buffer), []string{"--interval must be positive"}},
		{"argument", []string{"top", "jobs"}, new(bytes.Buffer), []string{"no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := run(tt.args, strings.NewReader(""), tt.stdout, &stderr); got != exitUsage {
				t.Errorf("got exit status %v; want %v", got, exitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("got stderr %q; want it to contain %q", stderr.String(), w)
				}
			}
		})
	}
}

// TestTopNotTerminal runs the real binary with its output in a pipe.
func TestTopNotTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpqBin, "top", "--dir", t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("got %v; want exit status %v", err, exitUsage)
	}
	if got := stderr.String(); !strings.Contains(got, "not a terminal; use 'mpq ls") {
		t.Errorf("got stderr %q; want it to point to mpq ls", got)
	}
	if stdout.Len() != 0 {
		t.Errorf("got stdout %q; want nothing", stdout.String())
	}
}

// topTmux is a terminal: a window of a private tmux server.
type topTmux struct {
	t      testing.TB
	socket string
	target string
}

// startTopTmux runs argv in a width×height tmux window, on a tmux server
// of its own that the test's cleanup kills. When the program exits, a
// shell prints its exit status in the window and waits there: tmux's own
// account of a dead pane (remain-on-exit, #{pane_dead_status}) proved
// unreliable, sometimes never learning the status.
func startTopTmux(t testing.TB, width, height int, argv ...string) *topTmux {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the terminal tests of mpq top drive it in tmux")
	}
	// A socket of our own, in a short path (a socket's is limited to
	// about 100 bytes, which t.TempDir can exceed).
	sockDir, err := os.MkdirTemp("", "mpq-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	tm := &topTmux{t: t, socket: filepath.Join(sockDir, "socket"), target: "top"}
	script := `"$0" "$@"; echo "exited with status $?"; exec sleep 60`
	words := append([]string{"exec", "sh", "-c", script}, argv...)
	for i, w := range words {
		words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	t.Cleanup(func() { tm.tmux("kill-server") })
	// No configuration but no status line: the window is all the program's.
	if _, err := tm.tmux("-f", "/dev/null", "start-server", ";", "set-option", "-g", "status", "off",
		";", "new-session", "-d", "-s", tm.target, "-x", strconv.Itoa(width), "-y", strconv.Itoa(height),
		strings.Join(words, " ")); err != nil {
		t.Fatalf("starting tmux: %v", err)
	}
	return tm
}

// tmux runs a command of tm's server.
func (tm *topTmux) tmux(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-S", tm.socket}, args...)...)
	// Not the tmux the tests may run in.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "TMUX=") || strings.HasPrefix(kv, "TMUX_PANE=")
	})
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// screen is what the window shows now.
func (tm *topTmux) screen() string {
	tm.t.Helper()
	s, err := tm.tmux("capture-pane", "-p", "-t", tm.target)
	if err != nil {
		tm.t.Fatal(err)
	}
	return s
}

// waitFor polls the screen until ok accepts it, and fails the test,
// showing the last screen, if that takes longer than timeout.
func (tm *topTmux) waitFor(timeout time.Duration, what string, ok func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := tm.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("after %v the screen does not show %s:\n%s", timeout, what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for the program to exit and returns its exit status.
func (tm *topTmux) waitExit(timeout time.Duration) int {
	tm.t.Helper()
	status := regexp.MustCompile(`(?m)^exited with status (\d+)$`)
	m := status.FindStringSubmatch(tm.waitFor(timeout, "the program's exit", status.MatchString))
	code, err := strconv.Atoi(m[1])
	if err != nil {
		tm.t.Fatal(err)
	}
	return code
}

// topPut puts n messages into the named queue of dir.
func topPut(t testing.TB, dir, name string, n int) {
	t.Helper()
	q, err := mpq.Open(name, &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range n {
		if err := q.TryPut([]byte("message " + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTopTerminal runs mpq top in a real terminal (tmux), changes the
// queues under it, and quits it with q.
func TestTopTerminal(t *testing.T) {
	const timeout = 10 * time.Second
	dir := t.TempDir()
	for _, name := range []string{"alpha", "beta", "gamma"} {
		q, err := mpq.Create(name, &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		q.Close()
	}
	topPut(t, dir, "alpha", 3)
	topPut(t, dir, "beta", 5)

	tm := startTopTmux(t, 120, 30, mpqBin, "top", "--dir", dir, "--interval", "200ms")
	screen := tm.waitFor(timeout, "alpha at depth 3 and beta at 5", func(s string) bool {
		return topHasLine(s, "alpha", "3") && topHasLine(s, "beta", "5") && topHasLine(s, "gamma", "0")
	})
	if !strings.Contains(screen, "3 queues") || !strings.Contains(screen, "q quits") {
		t.Errorf("got the screen\n%s\nwant the header to count 3 queues and say q quits", screen)
	}
	if !topHasLine(screen, "NAME", "DEPTH", "USED", "IN/s", "OUT/s", "PROCS", "WAIT", "HELD", "STATE") {
		t.Errorf("got the screen\n%s\nwant the column titles", screen)
	}

	// Changes show: more messages, a sealed queue, a consumer waiting.
	topPut(t, dir, "alpha", 4)
	b, err := mpq.Open("beta", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Seal(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	g, err := mpq.Open("gamma", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := g.Get(ctx)
		got <- err
	}()
	defer func() {
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Errorf("the waiting Get: got %v; want %v", err, context.Canceled)
		}
		g.Close()
	}()
	screen = tm.waitFor(timeout, "alpha at 7, beta sealed, one process waiting on gamma", func(s string) bool {
		return topHasLine(s, "alpha", "7") && strings.Contains(s, "sealed") &&
			topHasLine(s, "gamma", "0") && strings.Contains(s, "1 get")
	})
	t.Logf("the screen:\n%s", screen)

	if _, err := tm.tmux("send-keys", "-t", tm.target, "q"); err != nil {
		t.Fatal(err)
	}
	if code := tm.waitExit(timeout); code != 0 {
		t.Errorf("got exit status %v; want 0; the screen:\n%s", code, tm.screen())
	}
	// Back from the alternate screen: the table is gone.
	if screen := tm.screen(); strings.Contains(screen, "alpha") {
		t.Errorf("after quitting the screen shows\n%s\nwant the table gone", screen)
	}
}

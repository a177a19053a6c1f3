package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

func newTopCmd(e *env) *cobra.Command {
	var interval time.Duration
	var anonymous bool
	c := &cobra.Command{
		Use:   "top",
		Short: "Watch every queue of the directory live, full screen",
		Long: `top shows every queue of the directory in a full-screen table that it
refreshes every --interval, until you press q (or Q, Esc, Ctrl+C).

The columns are:
  NAME   the queue
  DEPTH  messages waiting
  USED   ring bytes in use, as a share of the capacity
  IN/s   messages put per second since the last refresh
  OUT/s  messages taken per second since the last refresh
  PROCS  processes attached now
  WAIT   processes blocked in Get (waiting for data) or Put (for space)
  HELD   deliveries held by consumers, not yet acknowledged
  STATE  sealed, durable, stale (a process died inside Put or Get), how
         many dead processes still own part of the queue, not backed (a
         sparse queue file: see mpq stat); or the error met reading the
         queue

top reads the queues without attaching to them. It needs a terminal: for
a script, use 'mpq ls' or 'mpq ls --json'.

` + anonHelp + ` The header counts them
apart ("3 queues  2 anonymous"); --anonymous=false leaves them out.`,
		Example: `  mpq top
  mpq top --dir /var/lib/app/queues --interval 250ms`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			if interval <= 0 {
				return usage("top: --interval must be positive, got %v", interval)
			}
			out, ok := e.stdout.(term.File)
			if !ok || !term.IsTerminal(out.Fd()) {
				return usage("top: standard output is not a terminal; use 'mpq ls%s' (or 'mpq ls%s --json') instead", e.dirArg(), e.dirArg())
			}
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			m := newTopModel(e.queueDir(), interval, lipgloss.NewRenderer(out), func() topSnapshot {
				return topTake(e.dir, e.opts(), anonymous)
			})
			// The root command's context owns the signals: SIGINT and
			// SIGTERM cancel it, and the program then restores the
			// terminal and returns.
			p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithOutput(out),
				tea.WithContext(ctx), tea.WithoutSignalHandler())
			if _, err := p.Run(); err != nil {
				if _, ok := errors.AsType[*timeoutError](context.Cause(ctx)); ok {
					return nil // --timeout: how long to watch
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("top: %w", err)
			}
			return nil
		},
	}
	c.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	c.Flags().BoolVar(&anonymous, "anonymous", true, "show the anonymous queues open in processes too (Linux)")
	return c
}

// topQueue is one queue as a refresh saw it.
type topQueue struct {
	name  string
	stats mpq.Stats
	err   error // reading the queue failed (a corrupt file, say)
	anon  bool  // an anonymous queue, named @PID:LABEL
}

// topSnapshot is one refresh: every queue of the directory, sorted by name,
// then the anonymous ones.
type topSnapshot struct {
	at     time.Time
	queues []topQueue
	err    error // listing the directory failed
}

// topTake inspects every queue in dir, and if anonymous the anonymous
// queues. A queue removed between the listing and its inspection is left
// out; any other error is kept for its row.
func topTake(dir string, opts *mpq.Options, anonymous bool) topSnapshot {
	s := topSnapshot{at: time.Now()}
	names, err := mpq.List(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // no directory: no queues yet
		s.err = err
		return s
	}
	for _, name := range names {
		st, err := mpq.Inspect(name, opts)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		s.queues = append(s.queues, topQueue{name: name, stats: st, err: err})
	}
	if anonymous {
		for _, a := range anonymousRows() {
			s.queues = append(s.queues, topQueue{name: a.q.name, stats: a.stats, err: a.err, anon: true})
		}
	}
	return s
}

// topRow is one line of the table, every cell formatted.
type topRow struct {
	name, depth, used, in, out, procs, wait, held, state string

	err  bool // state holds the error met reading the queue
	warn bool // state reports a stale queue or dead owners
}

// topRows turns two successive snapshots of the queues, elapsed apart, into
// the table's rows, in cur's order. The rates are blank for a queue that
// prev lacks (prev is nil on the first refresh), that was recreated since,
// or when elapsed is not positive.
func topRows(prev, cur []topQueue, elapsed time.Duration) []topRow {
	before := make(map[string]mpq.Stats, len(prev))
	for _, q := range prev {
		if q.err == nil {
			before[q.name] = q.stats
		}
	}
	rows := make([]topRow, 0, len(cur))
	for _, q := range cur {
		if q.err != nil {
			rows = append(rows, topRow{name: q.name, state: strings.TrimPrefix(q.err.Error(), "mpq: "), err: true})
			continue
		}
		s := q.stats
		r := topRow{
			name:  q.name,
			depth: strconv.Itoa(s.Len),
			used:  topUsed(s.Used, s.Capacity),
			procs: strconv.Itoa(len(s.Procs)),
			wait:  topWait(s.Procs),
			held:  strconv.Itoa(s.InFlight),
		}
		r.state, r.warn = topState(s)
		if p, ok := before[q.name]; ok && elapsed > 0 && p.Created.Equal(s.Created) &&
			s.Puts >= p.Puts && s.Gets >= p.Gets {
			r.in = topRate(float64(s.Puts-p.Puts) / elapsed.Seconds())
			r.out = topRate(float64(s.Gets-p.Gets) / elapsed.Seconds())
		}
		rows = append(rows, r)
	}
	return rows
}

// topUsed is "12% of 64 MiB".
func topUsed(used, capacity int) string {
	if capacity <= 0 {
		return topBytes(used)
	}
	pct := used * 100 / capacity
	if pct == 0 && used > 0 {
		return "<1% of " + topBytes(capacity)
	}
	return strconv.Itoa(pct) + "% of " + topBytes(capacity)
}

// topBytes is n in the largest binary unit it reaches: "512 B", "4 MiB",
// "1.5 GiB".
func topBytes(n int) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.Itoa(n) + " B"
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f %ciB", v, units[i])
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

// topRate formats messages per second: "0", "0.5", "42", "12.3k", "1.2M".
func topRate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r < 1e3:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r < 1e6:
		return strconv.FormatFloat(r/1e3, 'f', 1, 64) + "k"
	case r < 1e9:
		return strconv.FormatFloat(r/1e6, 'f', 1, 64) + "M"
	}
	return strconv.FormatFloat(r/1e9, 'f', 1, 64) + "G"
}

// topWait is "2 get, 1 put": how many processes are blocked for data and
// for space. It is "" when none is.
func topWait(procs []mpq.Attached) string {
	var data, space int
	for _, p := range procs {
		if p.WaitingData {
			data++
		}
		if p.WaitingSpace {
			space++
		}
	}
	var parts []string
	if data > 0 {
		parts = append(parts, strconv.Itoa(data)+" get")
	}
	if space > 0 {
		parts = append(parts, strconv.Itoa(space)+" put")
	}
	return strings.Join(parts, ", ")
}

// topState is "sealed, durable, stale, 2 gone, not backed" (each part when
// it holds), and whether it is worth a warning colour.
func topState(s mpq.Stats) (state string, warn bool) {
	var parts []string
	if s.Sealed {
		parts = append(parts, "sealed")
	}
	if s.Durable {
		parts = append(parts, "durable")
	}
	if s.Stale {
		parts = append(parts, "stale")
	}
	if len(s.Gone) > 0 {
		parts = append(parts, strconv.Itoa(len(s.Gone))+" gone")
	}
	if unbacked(s) {
		parts = append(parts, "not backed")
	}
	return strings.Join(parts, ", "), s.Stale || len(s.Gone) > 0 || unbacked(s)
}

// The table's columns, in order, with the cell each shows.
var topColumns = []struct {
	title string
	right bool // right-aligned (numbers)
	cell  func(topRow) string
}{
	{"NAME", false, func(r topRow) string { return r.name }},
	{"DEPTH", true, func(r topRow) string { return r.depth }},
	{"USED", false, func(r topRow) string { return r.used }},
	{"IN/s", true, func(r topRow) string { return r.in }},
	{"OUT/s", true, func(r topRow) string { return r.out }},
	{"PROCS", true, func(r topRow) string { return r.procs }},
	{"WAIT", false, func(r topRow) string { return r.wait }},
	{"HELD", true, func(r topRow) string { return r.held }},
	{"STATE", false, func(r topRow) string { return r.state }},
}

const (
	topGap       = 2  // spaces between columns
	topMinName   = 8  // NAME is not cut narrower than this
	topStateRoom = 16 // room NAME makes for STATE
	topWidth     = 80 // the width assumed until the terminal reports its own
)

// topStyles colour the screen.
type topStyles struct {
	header, head, err, warn lipgloss.Style
}

func newTopStyles(r *lipgloss.Renderer) topStyles {
	return topStyles{
		header: r.NewStyle().Reverse(true).Bold(true),
		head:   r.NewStyle().Bold(true),
		err:    r.NewStyle().Foreground(lipgloss.Color("1")),
		warn:   r.NewStyle().Foreground(lipgloss.Color("3")),
	}
}

// topRender lays out the table in width columns and height lines (no limit
// if height is 0). When the table is too wide, NAME gives way first (down
// to topMinName), then the end of each line is cut; rows that do not fit
// are counted on the last line. A queue that could not be read shows its
// error after its name, across the other columns.
func topRender(rows []topRow, width, height int, st topStyles) []string {
	if width <= 0 {
		width = topWidth
	}
	last := len(topColumns) - 1
	widths := topWidths(rows, width)

	stateAt := 0 // where STATE starts
	for i := range last {
		stateAt += widths[i] + topGap
	}

	// cells joins cells padded to their columns' widths; the last one is
	// not padded.
	cells := func(cells ...string) string {
		var b strings.Builder
		for i, s := range cells {
			if i == len(cells)-1 {
				b.WriteString(s)
				break
			}
			s = ansi.Truncate(s, widths[i], "…")
			pad := strings.Repeat(" ", widths[i]-ansi.StringWidth(s))
			if topColumns[i].right {
				s = pad + s
			} else {
				s += pad
			}
			b.WriteString(s + strings.Repeat(" ", topGap))
		}
		return ansi.Truncate(strings.TrimRight(b.String(), " "), width, "…")
	}
	row := func(r topRow) []string {
		c := make([]string, len(topColumns))
		for i, col := range topColumns {
			c[i] = col.cell(r)
		}
		return c
	}
	// colour styles the end of line l from column at.
	colour := func(l string, at int, s lipgloss.Style) string {
		if ansi.StringWidth(l) <= at {
			return l
		}
		return ansi.Truncate(l, at, "") + s.Render(ansi.TruncateLeft(l, at, ""))
	}

	titles := make([]string, len(topColumns))
	for i, c := range topColumns {
		titles[i] = c.title
	}
	lines := []string{st.head.Render(cells(titles...))}
	shown := len(rows)
	if height > 0 && 1+shown > height {
		shown = max(height-2, 0) // leave a line for the count of the rest
	}
	for _, r := range rows[:shown] {
		switch {
		case r.err:
			lines = append(lines, colour(cells(r.name, r.state), widths[0]+topGap, st.err))
		case r.warn:
			lines = append(lines, colour(cells(row(r)...), stateAt, st.warn))
		default:
			lines = append(lines, cells(row(r)...))
		}
	}
	if shown < len(rows) && height > 1 {
		lines = append(lines, fmt.Sprintf("… and %d more", len(rows)-shown))
	}
	return lines
}

// topWidths returns the widths of the columns of rows in a table of at
// most width columns: each column as wide as its widest cell, but NAME
// giving way, down to topMinName, so that STATE has room for a few words.
func topWidths(rows []topRow, width int) []int {
	last := len(topColumns) - 1
	widths := make([]int, len(topColumns))
	for i, c := range topColumns {
		widths[i] = ansi.StringWidth(c.title)
		for _, r := range rows {
			if !r.err {
				widths[i] = max(widths[i], ansi.StringWidth(c.cell(r)))
			}
		}
	}
	// The columns between NAME and STATE keep their width.
	need := min(widths[last], topStateRoom)
	for i := 1; i < last; i++ {
		need += topGap + widths[i]
	}
	if widths[0]+topGap+need > width {
		widths[0] = max(min(widths[0], topMinName), width-topGap-need)
	}
	return widths
}

// topModel is the bubbletea model of mpq top.
type topModel struct {
	dir           string // shown in the header
	interval      time.Duration
	take          func() topSnapshot
	styles        topStyles
	width, height int
	snap          *topSnapshot // the latest refresh; nil before the first
	rows          []topRow
}

// topSnapMsg brings a refresh to Update.
type topSnapMsg struct{ snap topSnapshot }

// topTickMsg says it is time to refresh.
type topTickMsg struct{}

func newTopModel(dir string, interval time.Duration, r *lipgloss.Renderer, take func() topSnapshot) *topModel {
	return &topModel{dir: dir, interval: interval, take: take, styles: newTopStyles(r)}
}

func (m *topModel) Init() tea.Cmd { return m.refresh }

// refresh is the command that takes a snapshot, off the event loop.
func (m *topModel) refresh() tea.Msg { return topSnapMsg{m.take()} }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "Q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case topSnapMsg:
		var prev []topQueue
		var elapsed time.Duration
		if m.snap != nil && m.snap.err == nil {
			prev, elapsed = m.snap.queues, msg.snap.at.Sub(m.snap.at)
		}
		m.rows = topRows(prev, msg.snap.queues, elapsed)
		m.snap = &msg.snap
		// The next refresh is an interval after this one arrived, so that
		// refreshes never pile up behind a slow directory.
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return topTickMsg{} })
	case topTickMsg:
		return m, m.refresh
	}
	return m, nil
}

func (m *topModel) View() string {
	width := m.width
	if width <= 0 {
		width = topWidth
	}
	parts := []string{"mpq top", m.dir}
	if m.snap != nil {
		anon := 0
		for _, q := range m.snap.queues {
			if q.anon {
				anon++
			}
		}
		named := len(m.snap.queues) - anon
		queues := strconv.Itoa(named) + " queues"
		if named == 1 {
			queues = "1 queue"
		}
		parts = append(parts, m.snap.at.Format("15:04:05"), queues)
		if anon > 0 {
			parts = append(parts, strconv.Itoa(anon)+" anonymous")
		}
	}
	parts = append(parts, "q quits")
	header := ansi.Truncate(strings.Join(parts, "  "), width, "…")
	header += strings.Repeat(" ", max(width-ansi.StringWidth(header), 0))
	lines := []string{m.styles.header.Render(header), ""}
	height := 0
	if m.height > 0 {
		height = max(m.height-len(lines), 1)
	}
	switch {
	case m.snap == nil:
		lines = append(lines, "reading the queues…")
	case m.snap.err != nil:
		lines = append(lines, m.styles.err.Render(ansi.Truncate(strings.TrimPrefix(m.snap.err.Error(), "mpq: "), width, "…")))
	case len(m.rows) == 0:
		lines = append(lines, "no queues")
	default:
		lines = append(lines, topRender(m.rows, width, height, m.styles)...)
	}
	return strings.Join(lines, "\n")
}

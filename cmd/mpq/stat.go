package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

// queueJSON is how stat --json and ls --json describe a queue: mpq.Stats
// with names for scripts.
type queueJSON struct {
	Name          string     `json:"name"`
	Path          string     `json:"path"`
	Label         string     `json:"label,omitempty"`     // an anonymous queue's Options.Label
	Anonymous     bool       `json:"anonymous,omitempty"` // made by mpq.New: Name is @PID:LABEL
	PID           int        `json:"pid,omitempty"`       // the lowest process ID holding an anonymous queue
	Error         string     `json:"error,omitempty"`
	Capacity      int        `json:"capacity,omitempty"`
	MaxMessage    int        `json:"max_message_size,omitempty"`
	Created       *time.Time `json:"created,omitempty"`
	Len           int        `json:"len"`
	Used          int        `json:"used"`
	Puts          uint64     `json:"puts"`
	Gets          uint64     `json:"gets"`
	Waits         uint64     `json:"waits"`
	InFlight      int        `json:"in_flight"`
	Acks          uint64     `json:"acks"`
	Redelivered   uint64     `json:"redelivered"`
	DeadLettered  uint64     `json:"dead_lettered"`
	Torn          uint64     `json:"torn"`
	Recovered     uint64     `json:"recovered"`
	Sealed        bool       `json:"sealed"`
	Durable       bool       `json:"durable"`
	MaxDeliveries int        `json:"max_deliveries,omitempty"`
	DeadLetter    string     `json:"dead_letter,omitempty"`
	Stale         bool       `json:"stale,omitempty"`
	Corrupt       string     `json:"corrupt,omitempty"` // what was found when the queue was found corrupt
	FileSize      int64      `json:"file_size,omitempty"`
	Backed        *bool      `json:"backed,omitempty"` // every byte of the file has storage; unset if unknown
	FileSystem    *fsJSON    `json:"filesystem,omitempty"`
	Procs         []procJSON `json:"procs"`
	Gone          []procJSON `json:"gone"`
}

type procJSON struct {
	PID          int        `json:"pid"`
	Slot         int        `json:"slot"`
	Since        *time.Time `json:"since,omitempty"`
	Role         string     `json:"role"`
	WaitingData  bool       `json:"waiting_data,omitempty"`
	WaitingSpace bool       `json:"waiting_space,omitempty"`
	Holding      int        `json:"holding,omitempty"`
	PutLock      bool       `json:"put_lock,omitempty"`
	GetLock      bool       `json:"get_lock,omitempty"`
}

func toJSON(dir string, fsys *mpq.FileSystem, s mpq.Stats, err error, name string) queueJSON {
	q := queueJSON{Name: name, Path: filepath.Join(dir, name+".mpq"), FileSystem: fsToJSON(fsys), Procs: []procJSON{}, Gone: []procJSON{}}
	if err != nil {
		q.Error = err.Error()
		return q
	}
	created := s.Created
	q.Capacity, q.MaxMessage, q.Created = s.Capacity, s.MaxMessage, &created
	q.Len, q.Used, q.Puts, q.Gets, q.Waits = s.Len, s.Used, s.Puts, s.Gets, s.Waits
	q.InFlight, q.Acks, q.Redelivered, q.DeadLettered = s.InFlight, s.Acks, s.Redelivered, s.DeadLettered
	q.Torn, q.Recovered, q.Sealed, q.Durable, q.Stale = s.Torn, s.Recovered, s.Sealed, s.Durable, s.Stale
	q.MaxDeliveries, q.DeadLetter, q.Corrupt = s.MaxDeliveries, s.DeadLetter, s.Corrupt
	if s.FileSize > 0 {
		backed := s.Backed
		q.FileSize, q.Backed = s.FileSize, &backed
	}
	conv := func(ps []mpq.Attached) []procJSON {
		out := []procJSON{}
		for _, p := range ps {
			j := procJSON{PID: p.PID, Slot: p.Slot, Role: role(p), WaitingData: p.WaitingData,
				WaitingSpace: p.WaitingSpace, Holding: p.Holding, PutLock: p.PutLock, GetLock: p.GetLock}
			if p.PID != 0 {
				since := p.Since
				j.Since = &since
			}
			out = append(out, j)
		}
		return out
	}
	q.Procs, q.Gone = conv(s.Procs), conv(s.Gone)
	return q
}

// anonJSON is toJSON of the anonymous queue a.
func anonJSON(a *anonQueue, s mpq.Stats, err error) queueJSON {
	q := toJSON("", nil, s, err, a.name)
	q.Path, q.Label, q.Anonymous, q.PID = a.path(), a.label, true, a.holders[0].pid
	return q
}

// role names what a process has done with the queue.
func role(p mpq.Attached) string {
	switch {
	case p.Producer && p.Consumer:
		return "producer+consumer"
	case p.Producer:
		return "producer"
	case p.Consumer:
		return "consumer"
	}
	return "attached"
}

// doing says what a process is doing, or was doing when it died.
func doing(p mpq.Attached, gone bool) string {
	var parts []string
	if p.Holding > 0 {
		parts = append(parts, fmt.Sprintf("holding %d deliveries", p.Holding))
	}
	if p.WaitingData {
		parts = append(parts, "waiting for messages")
	}
	if p.WaitingSpace {
		parts = append(parts, "waiting for room")
	}
	if p.PutLock {
		parts = append(parts, "inside a put")
	}
	if p.GetLock {
		parts = append(parts, "inside a get")
	}
	if gone {
		return "died " + strings.Join(parts, ", ")
	}
	if len(parts) == 0 {
		return "idle"
	}
	return strings.Join(parts, ", ")
}

func newStatCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stat NAME",
		Short: "Show a queue's depth, counters and processes",
		Long: `Stat shows what is in a queue and who uses it: depth, bytes used of the
capacity, counters since creation, each attached process with its PID and
role and what it is doing, and processes that died still owning part of
the queue (a lock, deliveries, a waiter bit), which the next put, get or
sweep of a live process takes over; a queue found corrupt, with what was
found and how to fix it; then the queue file's size, flagged if
part of it has no storage allocated (a sparse file, copied or made by an
older mpq: the next process to open it reserves the rest), and the file
system it is on, with its size and free space. It reads the queue without
attaching to it.

` + anonHelp + ` A NAME of that form
is looked for among the anonymous queues first.

` + urlHelp + `
A shm: URL's queue is shown as that name's in its directory. For a queue
on NATS, stat shows what the server says of its stream and consumer:
messages and bytes stored, pending (not yet delivered), ack pending
(delivered, not yet acknowledged), redelivered, waiting consumers (blocked
gets), the limits and the lease (ack wait). Stat does not create queues:
one that does not exist is exit status 3.`,
		Example: `  mpq stat jobs
  mpq stat jobs --json | jq .len
  mpq stat nats://127.0.0.1:4222/jobs
  mpq stat 'shm:jobs?dir=/var/lib/app/queues' --json
  mpq stat '@4242:pool square: tasks'`,
		Args: exactArgs(1, "a queue name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.ref(args[0])
			if err != nil {
				return err
			}
			if r.scheme == "nats" {
				return statNATS(cmd.Context(), e, r, asJSON)
			}
			name := r.name
			if r.u == nil {
				a, err := findAnonymousNamed(name)
				if err != nil {
					return err
				}
				if a != nil {
					return statAnonymous(e, a, asJSON)
				}
				if anonName.MatchString(name) {
					if _, err := mpq.Inspect(name, e.opts()); errors.Is(err, fs.ErrNotExist) {
						return fail(exitMissing, "no anonymous queue %s: no process this user may inspect holds one by that label or descriptor (see them with: mpq ls), and no queue of that name is in %s", name, e.queueDir())
					}
				}
			}
			var s mpq.Stats
			if r.u == nil {
				s, err = e.inspect(name)
			} else {
				s, err = mpq.Inspect(name, &mpq.Options{Dir: r.dir})
			}
			if err != nil {
				return r.err(err)
			}
			fsys := statFS(r.dir)
			if asJSON {
				return writeJSON(e.stdout, toJSON(r.dir, fsys, s, nil, name))
			}
			return printStat(e.stdout, filepath.Join(r.dir, s.Name+".mpq"), fsys, s, corruptFix(s))
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return c
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statAnonymous is mpq stat of the anonymous queue a.
func statAnonymous(e *env, a *anonQueue, asJSON bool) error {
	s, ok, err := a.inspect()
	if !ok {
		return fail(exitMissing, "anonymous queue %s is gone: every process that held it has closed it", a.name)
	}
	if err != nil {
		return anonErr(a, err)
	}
	if asJSON {
		return writeJSON(e.stdout, anonJSON(a, s, nil))
	}
	s.Name = a.name
	return printStat(e.stdout, a.path()+" (anonymous, held by "+a.holdersText()+")", nil, s, anonFix)
}

// printStat prints s, the queue whose file is file, and the file system
// fsys it is on (nil: not shown); fix says how the queue is repaired if it
// is corrupt.
func printStat(w io.Writer, file string, fsys *mpq.FileSystem, s mpq.Stats, fix string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Corrupt != "", "CORRUPT"}, {s.Sealed, "sealed"}, {s.Durable, "durable"}, {s.Stale, "stale counters (a process died inside put or get)"},
		{unbacked(s), "not backed (see file size)"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	if len(flags) == 0 {
		flags = append(flags, "-")
	}
	fmt.Fprintf(tw, "queue\t%s\n", s.Name)
	if s.Label != "" {
		fmt.Fprintf(tw, "label\t%s\n", s.Label)
	}
	if s.Corrupt != "" {
		fmt.Fprintf(tw, "CORRUPT\t%s\n", s.Corrupt)
		fmt.Fprintf(tw, "\tevery put, get and seal fails until it is %s\n", fix)
	}
	fmt.Fprintf(tw, "file\t%s\n", file)
	fmt.Fprintf(tw, "file size\t%s\n", describeFile(s))
	if fsys != nil {
		fmt.Fprintf(tw, "file system\t%s\n", describeFS(fsys))
	}
	fmt.Fprintf(tw, "created\t%s (%s)\n", s.Created.Format(time.DateTime), humanize.Time(s.Created))
	fmt.Fprintf(tw, "depth\t%d messages\n", s.Len)
	fmt.Fprintf(tw, "used\t%s of %s (%.0f%%), max message %s\n", humanize.IBytes(uint64(s.Used)),
		humanize.IBytes(uint64(s.Capacity)), 100*float64(s.Used)/float64(max(s.Capacity, 1)), humanize.IBytes(uint64(s.MaxMessage)))
	fmt.Fprintf(tw, "counters\tputs %d, gets %d, waits %d\n", s.Puts, s.Gets, s.Waits)
	fmt.Fprintf(tw, "deliveries\tin flight %d, acks %d, redelivered %d, dead-lettered %d\n", s.InFlight, s.Acks, s.Redelivered, s.DeadLettered)
	if s.MaxDeliveries > 0 {
		dl := "dropped"
		if s.DeadLetter != "" {
			dl = "moved to " + s.DeadLetter
		}
		fmt.Fprintf(tw, "\tafter %d deliveries a message is %s\n", s.MaxDeliveries, dl)
	}
	fmt.Fprintf(tw, "recovery\ttorn records dropped %d, locks taken over %d\n", s.Torn, s.Recovered)
	fmt.Fprintf(tw, "flags\t%s\n", strings.Join(flags, ", "))
	fmt.Fprintf(tw, "processes\t%d attached\n", len(s.Procs))
	if err := tw.Flush(); err != nil {
		return err
	}
	procTable := func(ps []mpq.Attached, gone bool) {
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "  PID\tROLE\tSINCE\tSTATE\n")
		for _, p := range ps {
			pid, since := fmt.Sprint(p.PID), humanize.Time(p.Since)
			if p.PID == 0 {
				pid, since = "?", "?"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", pid, role(p), since, doing(p, gone))
		}
		tw.Flush()
	}
	if len(s.Procs) > 0 {
		procTable(s.Procs, false)
	}
	if len(s.Gone) > 0 {
		fmt.Fprintf(w, "dead owners  %s died owning part of the queue; the next put, get or sweep takes it over\n", plural(len(s.Gone), "process"))
		procTable(s.Gone, true)
	}
	return nil
}

func newLsCmd(e *env) *cobra.Command {
	var asJSON, anonymous bool
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the queues in the directory",
		Long: `Ls lists every queue in the directory (--dir, else $MPQ_DIR, else the
per-user default) with its depth, bytes used, counters and processes, and
then the file system the directory is on, with its size and free space.
It reads each queue without attaching to it; a file it cannot read is
listed with the reason. STATE says "not backed" of a queue whose file is
sparse (see mpq stat).

` + anonHelp + ` --anonymous=false leaves
them out. In --json they have "anonymous": true, their "label" and "pid"
(the lowest), and for "path" the /proc/PID/fd/N they are read through.`,
		Example: `  mpq ls
  mpq ls --dir /var/lib/app/queues --json
  mpq ls --anonymous=false`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := e.queueDir()
			names, err := mpq.List(e.dir)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fail(exitFailure, "%v", err)
			}
			fsys := statFS(dir)
			var anon []anonRow
			if anonymous {
				anon = anonymousRows()
			}
			if asJSON {
				out := []queueJSON{}
				for _, n := range names {
					s, err := mpq.Inspect(n, e.opts())
					out = append(out, toJSON(dir, fsys, s, err, n))
				}
				for _, a := range anon {
					out = append(out, anonJSON(a.q, a.stats, a.err))
				}
				return writeJSON(e.stdout, out)
			}
			if len(names) == 0 {
				fmt.Fprintf(e.stderr, "no queues in %s; make one with: mpq create%s NAME\n", dir, e.dirArg())
				if len(anon) == 0 {
					return nil
				}
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintf(tw, "NAME\tDEPTH\tUSED\tCAPACITY\tPUTS\tGETS\tPROCS\tSTATE\n")
			for _, n := range names {
				s, err := mpq.Inspect(n, e.opts())
				lsRow(tw, n, s, err)
			}
			for _, a := range anon {
				lsRow(tw, a.q.name, a.stats, a.err)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(names) > 0 && fsys != nil {
				fmt.Fprintf(e.stdout, "file system of %s: %s\n", dir, describeFS(fsys))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	c.Flags().BoolVar(&anonymous, "anonymous", true, "list the anonymous queues open in processes too (Linux)")
	return c
}

// lsRow prints the line of mpq ls of queue name, whose Stats are s, or
// which could not be read (err).
func lsRow(w io.Writer, name string, s mpq.Stats, err error) {
	if err != nil {
		fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\tunreadable: %v\n", name, err)
		return
	}
	fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", name, s.Len, humanize.IBytes(uint64(s.Used)),
		humanize.IBytes(uint64(s.Capacity)), s.Puts, s.Gets, len(s.Procs), state(s))
}

// anonFix says how a corrupt anonymous queue is got rid of.
const anonFix = "closed by every process that holds it (an anonymous queue has no recovery: it goes then)"

// corruptFix says how to repair a corrupt named queue.
func corruptFix(s mpq.Stats) string {
	if s.Durable {
		return "repaired: close it in every process, then open it again (mpq get " + s.Name +
			"), which recovers it, dropping the damaged records; or remove it: mpq rm --force " + s.Name
	}
	return "removed (a queue in memory has no recovery, its messages are lost): mpq rm --force " + s.Name
}

// state sums up a queue's flags and trouble in a few words.
func state(s mpq.Stats) string {
	var parts []string
	if s.Corrupt != "" {
		parts = append(parts, "CORRUPT")
	}
	if s.Sealed {
		parts = append(parts, "sealed")
	}
	if s.Durable {
		parts = append(parts, "durable")
	}
	if s.InFlight > 0 {
		parts = append(parts, fmt.Sprintf("%d in flight", s.InFlight))
	}
	if len(s.Gone) > 0 {
		parts = append(parts, plural(len(s.Gone), "dead owner"))
	}
	if s.Stale {
		parts = append(parts, "stale")
	}
	if unbacked(s) {
		parts = append(parts, "not backed")
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, ", ")
}

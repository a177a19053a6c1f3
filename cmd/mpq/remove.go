package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

func init() { commands = append(commands, newRmCmd, newGcCmd) }

// inUse says why a queue should not be removed without --force, or "".
func inUse(s mpq.Stats) string {
	if n := len(s.Procs); n > 0 {
		pids := make([]string, n)
		for i, p := range s.Procs {
			pids[i] = strconv.Itoa(p.PID)
		}
		return fmt.Sprintf("is open in %s (PID %s)", plural(n, "process"), strings.Join(pids, ", "))
	}
	if s.Len > 0 || s.InFlight > 0 {
		if s.InFlight > 0 {
			return fmt.Sprintf("holds %s (%d in flight)", plural(s.Len, "message"), s.InFlight)
		}
		return "holds " + plural(s.Len, "message")
	}
	return ""
}

func newRmCmd(e *env) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove queues",
		Long: `Rm removes each named queue. It refuses a queue that processes have open
or that holds messages, and one it cannot read, unless --force: processes
that have a removed queue open keep using it until they close it, and a
later create makes a new queue under the name.`,
		Example: `  mpq rm jobs
  mpq rm --force jobs old-jobs`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usage("rm: want at least one queue name")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, name := range args {
				if err := e.rm(name, force); err != nil {
					errs = append(errs, err)
				}
			}
			return e.lastErr(errs)
		},
	}
	c.Flags().BoolVar(&force, "force", false, "remove even a queue in use, holding messages, or unreadable")
	return c
}

func (e *env) rm(name string, force bool) error {
	if force {
		return e.queueErr(name, mpq.Remove(name, e.opts()))
	}
	// RemoveIf keeps processes from attaching while it decides.
	var why string
	err := mpq.RemoveIf(name, e.opts(), func(s mpq.Stats) error {
		if why = inUse(s); why != "" {
			return errKept
		}
		return nil
	})
	switch {
	case errors.Is(err, errKept):
		return fail(exitFailure, "queue %s %s; remove it anyway with: mpq rm%s --force %s", name, why, e.dirArg(), name)
	case err != nil && (errors.Is(err, mpq.ErrCorrupt) || errors.Is(err, mpq.ErrIncompatible)):
		return fail(exitFailure, "queue %s cannot be read (%s); remove it anyway with: mpq rm%s --force %s", name, clean(err), e.dirArg(), name)
	}
	return e.queueErr(name, err)
}

// errKept is what a RemoveIf check returns to keep a queue.
var errKept = errors.New("kept")

// lastErr prints every error but the last and returns the last, whose
// exit status is mpq's.
func (e *env) lastErr(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs[:len(errs)-1] {
		fmt.Fprintf(e.stderr, "mpq: %s\n", clean(err))
	}
	return errs[len(errs)-1]
}

// plural is "1 message", "2 messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func newGcCmd(e *env) *cobra.Command {
	var force, dryRun bool
	c := &cobra.Command{
		Use:   "gc",
		Short: "Remove abandoned queues and stale socket files",
		Long: `Gc cleans the directory up. It removes:
  - queues that no running process has open and that hold no messages
    (with --force, also those still holding messages);
  - socket files of Listeners whose process is gone;
  - temporary files left by a process that died while creating a queue.
Queues a running process has open are always kept, as are files gc cannot
read (remove those with mpq rm --force NAME).

gc (like rm without --force) decides and removes while no process can
attach to the queue: a process opening it meanwhile waits, then finds it
gone and makes a new one, never keeps working on a removed one.`,
		Example: `  mpq gc --dry-run
  mpq gc --force`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := e.queueDir()
			ents, err := os.ReadDir(dir)
			if err != nil {
				if os.IsNotExist(err) {
					return nil // no directory: nothing to clean
				}
				return fail(exitFailure, "gc: %v", err)
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			var failed error
			remove := func(path, what string) {
				if !dryRun {
					if err := os.Remove(path); err != nil {
						failed = fail(exitFailure, "gc: %v", err)
						fmt.Fprintf(e.stderr, "mpq: gc: %v\n", err)
						return
					}
				}
				fmt.Fprintf(e.stdout, "%s %s\n", verb, what)
			}
			names, err := mpq.List(dir)
			if err != nil {
				return fail(exitFailure, "gc: %v", err)
			}
			for _, name := range names {
				// Decide under RemoveIf, so that no process attaches
				// between the look and the removal (a dry run only looks).
				var kept string
				decide := func(s mpq.Stats) error {
					switch {
					case len(s.Procs) > 0:
						return errKept // in use: nothing to say
					case (s.Len > 0 || s.InFlight > 0) && !force:
						kept = fmt.Sprintf("kept queue %s: nobody has it open but it %s (remove such queues with --force)", name, inUse(s))
						return errKept
					}
					kept = fmt.Sprintf("queue %s (%s, no processes)", name, plural(s.Len, "message"))
					if dryRun {
						return errKept
					}
					return nil
				}
				var err error
				if dryRun {
					var s mpq.Stats
					if s, err = mpq.Inspect(name, e.opts()); err == nil {
						err = decide(s)
					}
				} else {
					err = mpq.RemoveIf(name, e.opts(), decide)
				}
				switch {
				case errors.Is(err, errKept) && strings.HasPrefix(kept, "queue "):
					fmt.Fprintf(e.stdout, "%s %s\n", verb, kept) // dry run
				case errors.Is(err, errKept):
					if kept != "" {
						fmt.Fprintln(e.stdout, kept)
					}
				case errors.Is(err, os.ErrNotExist):
					// removed by someone else meanwhile
				case err != nil:
					fmt.Fprintf(e.stdout, "kept queue %s: cannot be read (%s); remove it with: mpq rm%s --force %s\n", name, clean(err), e.dirArg(), name)
				default:
					fmt.Fprintf(e.stdout, "%s %s\n", verb, kept)
				}
			}
			for _, ent := range ents {
				path := filepath.Join(dir, ent.Name())
				switch {
				case ent.Type()&os.ModeSocket != 0 && strings.HasSuffix(ent.Name(), ".sock") && staleSocket(path):
					remove(path, "stale socket "+ent.Name())
				case ent.Type().IsRegular() && abandonedTemp(ent.Name()):
					remove(path, "abandoned temporary file "+ent.Name())
				}
			}
			if failed != nil {
				return fail(exitFailure, "gc: some files could not be removed")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "also remove queues that hold messages (never those in use)")
	c.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "say what would be removed, remove nothing")
	return c
}

// staleSocket reports whether nothing listens on the socket file at path.
func staleSocket(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// abandonedTemp reports whether name is a temporary file of a queue being
// created (".NAME.mpq.PID.RANDOM.tmp", made by package mpq) whose process
// is gone, or a socket's temporary name.
func abandonedTemp(name string) bool {
	if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".tmp") {
		return false
	}
	f := strings.Split(strings.TrimSuffix(name, ".tmp"), ".")
	if len(f) < 4 || f[len(f)-3] != "mpq" {
		return false
	}
	pid, err := strconv.Atoi(f[len(f)-2])
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

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

	"github.com/mpq-go/mpq"
	"github.com/spf13/cobra"
)

func newGcCmd(e *env) *cobra.Command {
	g := &gc{e: e}
	c := &cobra.Command{
		Use:   "gc",
		Short: "Remove abandoned queues and stale socket files",
		Long: `Gc cleans the directory up. It removes:
  - queues that no running process has open and that hold no messages
    (with --force, also those still holding messages);
  - socket files of Listeners whose process is gone;
  - temporary files left by a process that died while creating a queue;
  - lock files (.mpq-ID.lock) of queues that are gone, older than a
    minute, that no process holds.
Queues a running process has open are always kept, as are files gc cannot
read (remove those with mpq rm --force NAME).

gc (like rm without --force) decides and removes while no process can
attach to the queue: a process opening it meanwhile waits, then finds it
gone and makes a new one, never keeps working on a removed one.`,
		Example: `  mpq gc --dry-run
  mpq gc --force`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return g.run() },
	}
	c.Flags().BoolVar(&g.force, "force", false, "also remove queues that hold messages (never those in use)")
	c.Flags().BoolVarP(&g.dryRun, "dry-run", "n", false, "say what would be removed, remove nothing")
	return c
}

// gc is one run of mpq gc.
type gc struct {
	e             *env
	force, dryRun bool
	failed        bool // a file could not be removed
}

// verb says what gc does to what it would remove.
func (g *gc) verb() string {
	if g.dryRun {
		return "would remove"
	}
	return "removed"
}

// run cleans the queue directory up: the queues, then the other files.
func (g *gc) run() error {
	dir := g.e.queueDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // no directory: nothing to clean
		}
		return fail(exitFailure, "gc: %v", err)
	}
	names, err := mpq.List(dir)
	if err != nil {
		return fail(exitFailure, "gc: %v", err)
	}
	for _, name := range names {
		g.queue(name)
	}
	g.orphanLocks(dir, ents)
	for _, ent := range ents {
		path := filepath.Join(dir, ent.Name())
		switch {
		case ent.Type()&os.ModeSocket != 0 && strings.HasSuffix(ent.Name(), ".sock"):
			g.staleSocket(path)
		case ent.Type().IsRegular() && abandonedTemp(ent.Name()):
			g.remove(path, "abandoned temporary file "+ent.Name())
		}
	}
	if g.failed {
		return fail(exitFailure, "gc: some files could not be removed")
	}
	return nil
}

// queue removes queue name if nobody has it open and it holds no messages
// (or --force), and says what it did or why not.
func (g *gc) queue(name string) {
	// Decide under RemoveIf, so that no process attaches between the look
	// and the removal (a dry run only looks).
	var kept string
	decide := func(s mpq.Stats) error {
		switch {
		case len(s.Procs) > 0:
			return errKept // in use: nothing to say
		case (s.Len > 0 || s.InFlight > 0) && !g.force:
			kept = fmt.Sprintf("kept queue %s: nobody has it open but it %s (remove such queues with --force)", name, inUse(s))
			return errKept
		}
		kept = fmt.Sprintf("queue %s (%s, no processes)", name, plural(s.Len, "message"))
		if g.dryRun {
			return errKept
		}
		return nil
	}
	var err error
	if g.dryRun {
		var s mpq.Stats
		if s, err = mpq.Inspect(name, g.e.opts()); err == nil {
			err = decide(s)
		}
	} else {
		err = mpq.RemoveIf(name, g.e.opts(), decide)
	}
	out := g.e.stdout
	switch {
	case errors.Is(err, errKept) && strings.HasPrefix(kept, "queue "):
		fmt.Fprintf(out, "%s %s\n", g.verb(), kept) // dry run
	case errors.Is(err, errKept):
		if kept != "" {
			fmt.Fprintln(out, kept)
		}
	case errors.Is(err, os.ErrNotExist):
		// removed by someone else meanwhile
	case err != nil:
		fmt.Fprintf(out, "kept queue %s: cannot be read (%s); remove it with: mpq rm%s --force %s\n", name, clean(err), g.e.dirArg(), name)
	default:
		fmt.Fprintf(out, "%s %s\n", g.verb(), kept)
	}
}

// remove removes the file at path (not in a dry run), what it is, and says
// so.
func (g *gc) remove(path, what string) {
	if !g.dryRun {
		if err := os.Remove(path); err != nil {
			g.failed = true
			fmt.Fprintf(g.e.stderr, "mpq: gc: %v\n", err)
			return
		}
	}
	fmt.Fprintf(g.e.stdout, "%s %s\n", g.verb(), what)
}

// staleSocket removes the socket file at path if nothing listens on it.
// It decides and removes under the lock that mpq.Listen takes to replace a
// stale socket (flock on .NAME.sock.lock), so that it never removes the
// socket of a Listen that has just replaced a stale one; with the lock
// busy, a Listen is at work there and the socket is left alone.
func (g *gc) staleSocket(path string) {
	if g.dryRun {
		if staleSocket(path) {
			g.remove(path, "stale socket "+filepath.Base(path))
		}
		return
	}
	lock := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
	fd, err := syscall.Open(lock, syscall.O_RDONLY|syscall.O_CREAT|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		g.failed = true
		fmt.Fprintf(g.e.stderr, "mpq: gc: open %s: %v\n", lock, err)
		return
	}
	defer syscall.Close(fd)
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return // a Listen is replacing it
	}
	if staleSocket(path) {
		g.remove(path, "stale socket "+filepath.Base(path))
	}
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

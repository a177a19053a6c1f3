package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

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

// rm removes queue name: only if it is not in use and holds no messages,
// unless force.
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

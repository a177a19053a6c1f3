package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq/examples"
)

func newDemoCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "demo [queue|pipe|pool]",
		Short: "Watch processes talk through a queue and a pipe, and a pool lose a worker",
		Long: `demo starts child processes (this program again) and shows them talking:

  queue  a writer process puts A, B and C into an anonymous queue while a
         reader process gets them; the parent seals the queue when the
         writer is done, and the reader stops once it has drained it.
  pipe   a sender process sends 0 to 4 over a one-way Pipe to a receiver
         process, which prints each; the sender closes its end when done,
         and the receiver stops.
  pool   a pool of two worker processes counts the primes below each of
         3,000 numbers; the parent SIGKILLs one worker midway, the pool
         replaces it and runs its task again, and every result comes back
         once, in order.

With no argument it runs all three. Every line says which process (PID) prints
it. The queues and pipes are anonymous: nothing is left behind, in the
queue directory or elsewhere. The demos are the programs examples/queue,
examples/pipe and examples/pool of the mpq sources, whose code is package
github.com/mpq-go/mpq/examples.`,
		Example: `  mpq demo
  mpq demo queue
  mpq demo pipe
  mpq demo pool`,
		ValidArgs: []string{"queue", "pipe", "pool"},
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage("demo: want at most one of queue, pipe or pool, got %d arguments", len(args))
			}
			if len(args) == 1 && args[0] != "queue" && args[0] != "pipe" && args[0] != "pool" {
				return usage("demo: unknown demo %q: want queue, pipe or pool", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			which := ""
			if len(args) == 1 {
				which = args[0]
			}
			return runDemo(c.Context(), e, which)
		},
	}
}

// demos are the programs of mpq demo, in the order it runs them.
var demos = []struct {
	name  string
	intro string                                                         // after "== NAME: "
	run   func(ctx context.Context, out io.Writer) (a, b int, err error) // the PIDs of its two children
	saw   string                                                         // what it showed, given the PIDs
}{
	{"queue", "a writer process puts A, B and C into an anonymous queue, a reader process gets them", examples.Queue,
		"writer %d and reader %d, processes of their own, passed A, B and C through a queue in shared memory"},
	{"pipe", "a sender process sends numbers to a receiver process over a one-way pipe", examples.Pipe,
		"sender %d sent 0 to 4 to receiver %d over a pipe"},
	{"pool", "a pool of two worker processes counts primes; the parent kills one midway", examples.Pool,
		"pool worker %d was killed midway, worker %d replaced it, and every result came back once"},
}

// runDemo runs the demo which, or all of them if which is "".
func runDemo(ctx context.Context, e *env, which string) error {
	var saw, code []string
	for _, d := range demos {
		if which != "" && which != d.name {
			continue
		}
		if len(saw) > 0 {
			fmt.Fprintln(e.stdout)
		}
		fmt.Fprintf(e.stdout, "== %s: %s\n", d.name, d.intro)
		a, b, err := d.run(ctx, e.stdout)
		if err != nil {
			return demoErr(ctx, err)
		}
		saw = append(saw, fmt.Sprintf(d.saw, a, b))
		code = append(code, "examples/"+d.name)
	}
	fmt.Fprintf(e.stdout, "\nWhat you saw: %s.\n", strings.Join(saw, "; "))
	list := code[len(code)-1]
	if len(code) > 1 {
		list = strings.Join(code[:len(code)-1], ", ") + " and " + list
	}
	fmt.Fprintf(e.stdout, "This is the code of %s in the mpq sources (package github.com/mpq-go/mpq/examples); read on with 'go doc github.com/mpq-go/mpq' and 'go doc github.com/mpq-go/mpq/proc'.\n", list)
	return nil
}

// demoErr is the error of a demo that failed: ctx's, if the demo was
// interrupted (so that mpq exits as interrupted), else err.
func demoErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("demo: %w", err)
}

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
		Use:   "demo [queue|pipe]",
		Short: "Watch processes talk through a queue and a pipe",
		Long: `demo starts child processes (this program again) and shows them talking:

  queue  a writer process puts A, B and C into an anonymous queue while a
         reader process gets them; the parent seals the queue when the
         writer is done, and the reader stops once it has drained it.
  pipe   a sender process sends 0 to 4 over a one-way Pipe to a receiver
         process, which prints each; the sender closes its end when done,
         and the receiver stops.

With no argument it runs both. Every line says which process (PID) prints
it. The queues and pipes are anonymous: nothing is left behind, in the
queue directory or elsewhere. The demos are the programs examples/queue
and examples/pipe of the mpq sources, whose code is package
github.com/mpq-go/mpq/examples.`,
		Example: `  mpq demo
  mpq demo queue
  mpq demo pipe`,
		ValidArgs: []string{"queue", "pipe"},
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage("demo: want at most one of queue or pipe, got %d arguments", len(args))
			}
			if len(args) == 1 && args[0] != "queue" && args[0] != "pipe" {
				return usage("demo: unknown demo %q: want queue or pipe", args[0])
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
}

// runDemo runs the queue demo, the pipe demo, or both if which is "".
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
	fmt.Fprintf(e.stdout, "This is the code of %s in the mpq sources (package github.com/mpq-go/mpq/examples); read on with 'go doc github.com/mpq-go/mpq' and 'go doc github.com/mpq-go/mpq/proc'.\n",
		strings.Join(code, " and "))
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

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

func init() { commands = append(commands, newDemoCmd) }

func newDemoCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "demo [queue|pipe]",
		Short: "Watch processes talk through a queue and a pipe",
		Long: `demo starts child processes (this program again) and shows them talking:

  queue  a writer process puts A, B and C into an anonymous queue while a
         reader process gets them; the parent seals the queue when the
         writer is done, and the reader stops once it has drained it.
  pipe   the parent sends numbers to a child process over a two-way Pipe
         and the child answers each with its square; the parent closes its
         end, and the child stops.

With no argument it runs both. Every line says which process (PID) prints
it. The queues and pipes are anonymous: nothing is left behind, in the
queue directory or elsewhere. The code of both is in examples/queue and
examples/pipe of the mpq sources.`,
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

// runDemo runs the queue demo, the pipe demo, or both if which is "".
func runDemo(ctx context.Context, e *env, which string) error {
	d := &demo{out: e.stdout, opts: &proc.Options{Stdout: e.stdout, Stderr: e.stderr}, pid: os.Getpid()}
	var saw, code []string
	if which == "" || which == "queue" {
		fmt.Fprintf(d.out, "== queue: a writer process puts A, B and C into an anonymous queue, a reader process gets them\n")
		w, r, err := d.queue(ctx)
		if err != nil {
			return demoErr(ctx, err)
		}
		saw = append(saw, fmt.Sprintf("writer %d and reader %d, processes of their own, passed A, B and C through a queue in shared memory", w, r))
		code = append(code, "examples/queue")
	}
	if which == "" {
		fmt.Fprintln(d.out)
	}
	if which == "" || which == "pipe" {
		fmt.Fprintf(d.out, "== pipe: the parent and a child process talk over a two-way pipe\n")
		child, err := d.pipe(ctx)
		if err != nil {
			return demoErr(ctx, err)
		}
		saw = append(saw, fmt.Sprintf("child %d squared the numbers parent %d sent it over a pipe", child, d.pid))
		code = append(code, "examples/pipe")
	}
	fmt.Fprintf(d.out, "\nWhat you saw: %s.\n", strings.Join(saw, "; "))
	fmt.Fprintf(d.out, "Programs like these are in %s of the mpq sources (this demo is cmd/mpq/demo.go); read on with 'go doc github.com/mpq-go/mpq' and 'go doc github.com/mpq-go/mpq/proc'.\n",
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

// demo is where the demo's parent writes, and how it starts children.
type demo struct {
	out  io.Writer
	opts *proc.Options
	pid  int // the parent's process ID
}

// demoWriter puts A, B and C into q, pausing a little before each.
var demoWriter = proc.Define("demo-writer", func(ctx context.Context, q *mpq.Queue) error {
	tq := mpq.QueueOf[string](q, nil)
	for _, v := range []string{"A", "B", "C"} {
		time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		fmt.Printf("writer %d: putting %s\n", os.Getpid(), v)
		if err := tq.Put(ctx, v); err != nil {
			return err
		}
	}
	return nil
})

// demoReader prints the values in q until it is sealed and empty.
var demoReader = proc.Define("demo-reader", func(ctx context.Context, q *mpq.Queue, writer int) error {
	tq := mpq.QueueOf[string](q, nil)
	for {
		v, err := tq.Get(ctx)
		if err == io.EOF {
			fmt.Printf("reader %d: queue sealed and empty, done\n", os.Getpid())
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("reader %d: got %s from writer %d\n", os.Getpid(), v, writer)
	}
})

// queue makes an anonymous queue, starts a writer and a reader with it, and
// seals it when the writer is done. It returns their process IDs.
func (d *demo) queue(ctx context.Context) (writer, reader int, err error) {
	q, err := mpq.New(&mpq.Options{Capacity: 64 << 10})
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	w, err := demoWriter.StartWith(ctx, d.opts, q)
	if err != nil {
		return 0, 0, err
	}
	r, err := demoReader.StartWith(ctx, d.opts, q, w.Pid())
	if err != nil {
		w.Kill()
		w.Wait()
		return 0, 0, err
	}
	fmt.Fprintf(d.out, "parent %d: started writer %d and reader %d\n", d.pid, w.Pid(), r.Pid())
	if err := w.Wait(); err != nil {
		r.Kill()
		r.Wait()
		return 0, 0, err
	}
	fmt.Fprintf(d.out, "parent %d: writer %d done, sealing the queue\n", d.pid, w.Pid())
	if err := q.Seal(); err != nil {
		r.Kill()
		r.Wait()
		return 0, 0, err
	}
	if err := r.Wait(); err != nil {
		return 0, 0, err
	}
	fmt.Fprintf(d.out, "parent %d: reader %d done\n", d.pid, r.Pid())
	return w.Pid(), r.Pid(), nil
}

// demoSquarer answers each number it receives on c with its square, until
// the other end is closed.
var demoSquarer = proc.Define("demo-squarer", func(ctx context.Context, c *mpq.Conn, parent int) error {
	tc := mpq.ConnOf[int](c, nil)
	for {
		n, err := tc.Recv(ctx)
		if err == io.EOF {
			fmt.Printf("child %d: parent %d closed its end, done\n", os.Getpid(), parent)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("child %d: got %d, answering %d\n", os.Getpid(), n, n*n)
		if err := tc.Send(ctx, n*n); err != nil {
			return err
		}
	}
})

// pipe starts a child with one end of a two-way pipe, sends it numbers on
// the other and prints its answers. It returns the child's process ID.
func (d *demo) pipe(ctx context.Context) (child int, err error) {
	mine, theirs, err := mpq.Pipe(true)
	if err != nil {
		return 0, err
	}
	defer mine.Close()
	p, err := demoSquarer.StartWith(ctx, d.opts, theirs, d.pid)
	theirs.Close() // the child has its own copy now
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(d.out, "parent %d: started child %d\n", d.pid, p.Pid())
	failed := func(err error) (int, error) {
		if errors.Is(err, io.EOF) || errors.Is(err, mpq.ErrPeerClosed) {
			// The child is gone, or going: say why.
			if werr := p.Wait(); werr != nil {
				return 0, werr
			}
			return 0, fmt.Errorf("child %d closed its end early", p.Pid())
		}
		p.Kill()
		p.Wait()
		return 0, err
	}
	tc := mpq.ConnOf[int](mine, nil)
	for n := 1; n <= 4; n++ {
		fmt.Fprintf(d.out, "parent %d: sending %d\n", d.pid, n)
		if err := tc.Send(ctx, n); err != nil {
			return failed(err)
		}
		sq, err := tc.Recv(ctx)
		if err != nil {
			return failed(err)
		}
		fmt.Fprintf(d.out, "parent %d: child %d answered %d\n", d.pid, p.Pid(), sq)
	}
	fmt.Fprintf(d.out, "parent %d: closing my end\n", d.pid)
	mine.Close()
	if err := p.Wait(); err != nil {
		return 0, err
	}
	fmt.Fprintf(d.out, "parent %d: child %d done\n", d.pid, p.Pid())
	return p.Pid(), nil
}

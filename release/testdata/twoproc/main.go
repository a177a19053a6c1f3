// Command twoproc is a new user's first program with mpq, as release/check
// builds it from a module of its own against the released modules: a
// producer process puts N messages into a named queue and a consumer
// process, started at the same time, gets them and checks that it got
// each one, in order. Both are this program again, started by the parent
// with an argument. It uses only mpq.Open, Put, Get and Close, and imports
// natsq so that the module is built too.
//
//	twoproc N        the parent: runs both in a new directory, prints "ok: …"
//	twoproc put DIR N
//	twoproc get DIR N
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/mpq-go/mpq"
	_ "github.com/mpq-go/mpq/natsq" // registers the nats:// scheme
)

const queue = "first"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "twoproc %d: %v\n", os.Getpid(), err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: twoproc N | twoproc put|get DIR N")
	}
	n, err := strconv.Atoi(args[len(args)-1])
	if err != nil || n < 1 {
		return fmt.Errorf("want a count of messages, got %q", args[len(args)-1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch {
	case len(args) == 1:
		return parent(n)
	case len(args) == 3 && args[0] == "put":
		return produce(ctx, args[1], n)
	case len(args) == 3 && args[0] == "get":
		return consume(ctx, args[1], n)
	}
	return fmt.Errorf("unknown arguments %q", args)
}

// message is the i'th message the producer puts.
func message(i int) []byte { return fmt.Appendf(nil, "message %d from the producer", i) }

// parent starts the consumer and the producer as processes of their own on
// one queue in a new directory, and waits for both.
func parent(n int) error {
	dir, err := os.MkdirTemp("", "twoproc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var children []*exec.Cmd
	for _, role := range []string{"get", "put"} {
		c := exec.Command(self, role, dir, strconv.Itoa(n))
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			for _, started := range children {
				started.Process.Kill()
				started.Wait()
			}
			return err
		}
		children = append(children, c)
	}
	consumer, producer := children[0], children[1]
	if err := producer.Wait(); err != nil {
		consumer.Process.Kill()
		consumer.Wait()
		return fmt.Errorf("producer: %v", err)
	}
	if err := consumer.Wait(); err != nil {
		return fmt.Errorf("consumer: %v", err)
	}
	fmt.Printf("ok: producer %d put %d messages, consumer %d got them in order, parent %d\n",
		producer.Process.Pid, n, consumer.Process.Pid, os.Getpid())
	return nil
}

// produce puts n messages into the queue in dir.
func produce(ctx context.Context, dir string, n int) error {
	q, err := mpq.Open(queue, &mpq.Options{Dir: dir})
	if err != nil {
		return err
	}
	for i := range n {
		if err := q.Put(ctx, message(i)); err != nil {
			q.Close()
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	fmt.Printf("producer %d: put %d messages\n", os.Getpid(), n)
	return q.Close()
}

// consume gets n messages from the queue in dir and checks each.
func consume(ctx context.Context, dir string, n int) error {
	q, err := mpq.Open(queue, &mpq.Options{Dir: dir})
	if err != nil {
		return err
	}
	for i := range n {
		got, err := q.Get(ctx)
		if err != nil {
			q.Close()
			return fmt.Errorf("get %d: %w", i, err)
		}
		if want := message(i); !bytes.Equal(got, want) {
			q.Close()
			return fmt.Errorf("get %d: got %q; want %q", i, got, want)
		}
	}
	fmt.Printf("consumer %d: got %d messages in order\n", os.Getpid(), n)
	return q.Close()
}

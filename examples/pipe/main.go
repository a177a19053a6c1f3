// Command pipe sends numbers from one process to another through a one-way
// Pipe, as Python's multiprocessing.Pipe does: a sender process sends 0 to 4
// and closes its end; a receiver process prints each number and stops at
// io.EOF.
//
//	go run ./examples/pipe
//
// The parent makes the pipe, hands one end to each child, and closes its
// own copies of both: otherwise the receiver would not see io.EOF when the
// sender is done, since the parent would still hold a sending end.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// sender sends 0 to n-1 on c, then closes it.
var sender = proc.Define("sender", func(ctx context.Context, c *mpq.Conn, n int) error {
	tc := mpq.ConnOf[int](c, nil)
	for i := range n {
		fmt.Printf("sender %d: sending %d\n", os.Getpid(), i)
		if err := tc.Send(ctx, i); err != nil {
			return err
		}
	}
	return c.Close()
})

// receiver prints what it receives on c until the sender's end is closed.
var receiver = proc.Define("receiver", func(ctx context.Context, c *mpq.Conn) error {
	defer c.Close()
	tc := mpq.ConnOf[int](c, nil)
	for {
		v, err := tc.Recv(ctx)
		if err == io.EOF {
			fmt.Printf("receiver %d: sender closed its end, done\n", os.Getpid())
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("receiver %d: got %d\n", os.Getpid(), v)
	}
})

func main() {
	proc.Main() // in a child process: run its function and exit
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// run starts the receiver with the receiving end of a one-way pipe and the
// sender with the sending end, and waits for both.
func run(ctx context.Context) error {
	recvEnd, sendEnd, err := mpq.Pipe(false) // first end receives, second sends
	if err != nil {
		return err
	}
	r, err := receiver.Start(ctx, recvEnd)
	recvEnd.Close() // the receiver has its own copy now
	if err != nil {
		sendEnd.Close()
		return err
	}
	s, err := sender.Start(ctx, sendEnd, 5)
	sendEnd.Close() // the sender has its own copy now
	if err != nil {
		r.Kill()
		r.Wait()
		return err
	}
	fmt.Printf("parent %d: started sender %d and receiver %d\n", os.Getpid(), s.Pid(), r.Pid())
	serr, rerr := s.Wait(), r.Wait()
	if serr != nil {
		return serr
	}
	if rerr != nil {
		return rerr
	}
	fmt.Printf("parent %d: both done\n", os.Getpid())
	return nil
}

package examples

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// sender sends 0 to n-1 on c, then closes it.
var sender = proc.Define("examples.sender", func(ctx context.Context, c *mpq.Conn, n int) error {
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
var receiver = proc.Define("examples.receiver", func(ctx context.Context, c *mpq.Conn) error {
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

// Pipe starts a receiver process with the receiving end of a one-way pipe
// and a sender process with the sending end; the sender sends 0 to 4 and
// closes its end, and the receiver stops at io.EOF. Every process prints
// what it does to out. Pipe waits for both and returns their process IDs.
//
// The parent closes its own copies of both ends once the children have
// theirs: otherwise the receiver would not see io.EOF when the sender is
// done, since the parent would still hold a sending end.
func Pipe(ctx context.Context, out io.Writer) (senderPid, receiverPid int, err error) {
	recvEnd, sendEnd, err := mpq.Pipe(false) // first end receives, second sends
	if err != nil {
		return 0, 0, err
	}
	opts := &proc.Options{Stdout: out, Stderr: os.Stderr}
	r, err := receiver.StartWith(ctx, opts, recvEnd)
	recvEnd.Close() // the receiver has its own copy now
	if err != nil {
		sendEnd.Close()
		return 0, 0, err
	}
	s, err := sender.StartWith(ctx, opts, sendEnd, 5)
	sendEnd.Close() // the sender has its own copy now
	if err != nil {
		r.Kill()
		r.Wait()
		return 0, 0, err
	}
	fmt.Fprintf(out, "parent %d: started sender %d and receiver %d\n", os.Getpid(), s.Pid(), r.Pid())
	serr, rerr := s.Wait(), r.Wait()
	if serr != nil {
		return 0, 0, serr
	}
	if rerr != nil {
		return 0, 0, rerr
	}
	fmt.Fprintf(out, "parent %d: both done\n", os.Getpid())
	return s.Pid(), r.Pid(), nil
}

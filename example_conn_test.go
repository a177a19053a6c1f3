package mpq_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mpq-go/mpq"
)

// A one-way pipe: the first end receives, the second sends. (Both ends are
// in this process here; hand one to a child with the proc package.)
func ExamplePipe() {
	ctx := context.Background()
	r, w, err := mpq.Pipe(false)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for i := range 3 {
		w.Send(ctx, []byte(fmt.Sprint("message ", i)))
	}
	w.Close() // r receives what was sent, then io.EOF
	for {
		msg, err := r.Recv(ctx)
		if err == io.EOF {
			break
		}
		fmt.Println(string(msg))
	}
	// Output:
	// message 0
	// message 1
	// message 2
}

// Unrelated processes connect by name; with a Key, both sides prove they
// hold it before any message passes.
func ExampleListen() {
	dir, _ := os.MkdirTemp("", "mpq-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	key := []byte("shared secret")

	l, err := mpq.Listen("service", &mpq.ListenOptions{Dir: dir, Key: key})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		msg, _ := c.Recv(ctx)
		c.Send(ctx, append([]byte("hello, "), msg...))
	}()

	c, err := mpq.Dial(ctx, "service", &mpq.DialOptions{Dir: dir, Key: key})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Send(ctx, []byte("client"))
	reply, _ := c.Recv(ctx)
	fmt.Println(string(reply))
	// Output: hello, client
}

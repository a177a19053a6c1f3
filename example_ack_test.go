package mpq_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/mpq-go/mpq"
)

// Receive leaves the message in the queue until it is acknowledged. A
// consumer that cannot process it gives it back with Nack (or dies, or lets
// its lease run out), and it is delivered again.
func ExampleQueue_Receive() {
	q, err := mpq.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	if err := q.Put(ctx, []byte("resize a.png")); err != nil {
		log.Fatal(err)
	}

	d, err := q.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, delivery %d: failed, given back\n", d.Data(), d.Count())
	if err := d.Nack(); err != nil {
		log.Fatal(err)
	}

	d, err = q.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, delivery %d: done\n", d.Data(), d.Count())
	if err := d.Ack(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("left:", q.Len())
	// Output:
	// resize a.png, delivery 1: failed, given back
	// resize a.png, delivery 2: done
	// left: 0
}

// Join waits until every message put so far has been processed: taken by
// Get, or received and acknowledged.
func ExampleQueue_Join() {
	q, err := mpq.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()

	// A worker, which could as well be another process.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := q.Receive(ctx)
			if err == io.EOF {
				return
			}
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("processed %s\n", d.Data())
			if err := d.Ack(); err != nil {
				log.Fatal(err)
			}
		}
	}()

	for _, job := range []string{"a", "b", "c"} {
		if err := q.Put(ctx, []byte(job)); err != nil {
			log.Fatal(err)
		}
	}
	if err := q.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("all processed")

	if err := q.Seal(); err != nil { // the worker ends
		log.Fatal(err)
	}
	<-done
	// Output:
	// processed a
	// processed b
	// processed c
	// all processed
}

// A durable queue keeps its messages in a file on disk, across restarts of
// its processes and of the machine.
func ExampleOptions_durable() {
	// Dir must be on a disk filesystem, not tmpfs (as /tmp may be): here,
	// a directory beside the program.
	dir, err := os.MkdirTemp(".", ".mpq-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opts := &mpq.Options{Dir: dir, Durable: true}
	ctx := context.Background()

	q, err := mpq.Open("orders", opts)
	if err != nil {
		log.Fatal(err)
	}
	// With the default Sync policy, Put returns once the message is on disk.
	if err := q.Put(ctx, []byte("order 1")); err != nil {
		log.Fatal(err)
	}
	q.Close()

	// Later, in another process perhaps.
	q, err = mpq.Open("orders", opts)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	d, err := q.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", d.Data())
	if err := d.Ack(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// order 1
}

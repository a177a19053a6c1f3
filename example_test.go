package mpq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/mpq-go/mpq"
)

// Producers and consumers open a queue by name; here both sides run in one
// process.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "mpq-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Every process that opens "jobs" in dir shares the queue. With a nil
	// *Options it would live in the per-user default directory.
	q, err := mpq.Open("jobs", &mpq.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	ctx := context.Background()
	for _, job := range []string{"resize a.png", "resize b.png"} {
		if err := q.Put(ctx, []byte(job)); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("waiting:", q.Len())
	for q.Len() > 0 {
		msg, err := q.Get(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(msg))
	}
	// Output:
	// waiting: 2
	// resize a.png
	// resize b.png
}

// A producer seals the queue when it is done; consumers receive what is
// left, then io.EOF.
func ExampleQueue_Seal() {
	dir, err := os.MkdirTemp("", "mpq-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := mpq.Open("results", &mpq.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()

	// Producer.
	for i := 1; i <= 3; i++ {
		if err := q.Put(ctx, fmt.Appendf(nil, "result %d", i)); err != nil {
			log.Fatal(err)
		}
	}
	if err := q.Seal(); err != nil {
		log.Fatal(err)
	}
	if err := q.Put(ctx, []byte("late")); errors.Is(err, mpq.ErrSealed) {
		fmt.Println("put after seal:", err)
	}

	// Consumer: no sentinel message needed to know it is over.
	for {
		msg, err := q.Get(ctx)
		if err == io.EOF {
			fmt.Println("end of queue")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(msg))
	}
	// Output:
	// put after seal: mpq: queue is sealed
	// result 1
	// result 2
	// result 3
	// end of queue
}

// GetBatch takes many messages per call into one reusable buffer.
func ExampleQueue_GetBatch() {
	dir, err := os.MkdirTemp("", "mpq-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := mpq.Open("events", &mpq.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()

	msgs := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}
	if _, err := q.PutBatch(ctx, msgs); err != nil {
		log.Fatal(err)
	}
	if err := q.Seal(); err != nil {
		log.Fatal(err)
	}

	var b mpq.Batch
	for {
		err := q.GetBatch(ctx, &b, 3) // at most 3 at a time
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(b.Len(), " messages:")
		for i := 0; i < b.Len(); i++ {
			fmt.Print(" ", string(b.Message(i)))
		}
		fmt.Println()
	}
	// Output:
	// 3 messages: a b c
	// 2 messages: d e
}

// An anonymous queue has no name: a child process receives its file, for
// example in exec.Cmd.ExtraFiles, and opens it with OpenFile. Here the
// "child" is in the same process.
func ExampleNew() {
	q, err := mpq.New(&mpq.Options{Capacity: 64 << 10})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	f, err := q.File() // what the parent hands to the child
	if err != nil {
		log.Fatal(err)
	}
	child, err := mpq.OpenFile(f, nil) // in the child
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer child.Close()

	ctx := context.Background()
	if err := q.Put(ctx, []byte("work for the child")); err != nil {
		log.Fatal(err)
	}
	msg, err := child.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("child got %q\n", msg)
	fmt.Println("capacity:", child.Stats().Capacity)
	// Output:
	// child got "work for the child"
	// capacity: 65536
}

package mpq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"

	"github.com/mpq-go/mpq"
)

// A typed view carries Go values, encoded with CBOR by default. Get returns
// io.EOF once the queue is sealed and drained, as the plain Get does.
func ExampleQueueOf() {
	type Job struct {
		ID    int
		Image string
		Sizes []int
	}

	q, err := mpq.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	jobs := mpq.QueueOf[Job](q, nil) // nil: mpq.CBOR

	ctx := context.Background()
	for i, img := range []string{"a.png", "b.png"} {
		if err := jobs.Put(ctx, Job{ID: i + 1, Image: img, Sizes: []int{64, 128}}); err != nil {
			log.Fatal(err)
		}
	}
	q.Seal()

	for {
		job, err := jobs.Get(ctx)
		if err == io.EOF {
			break
		}
		if errors.Is(err, mpq.ErrDecode) {
			log.Print(err) // a bad message: skip it
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%+v\n", job)
	}
	// Output:
	// {ID:1 Image:a.png Sizes:[64 128]}
	// {ID:2 Image:b.png Sizes:[64 128]}
}

// JSON messages can be read by peers in any language. A value that cannot
// be encoded is refused by Put itself, and nothing is written.
func ExampleQueueOf_json() {
	type Reading struct {
		Sensor string  `json:"sensor"`
		Value  float64 `json:"value"`
	}

	q, err := mpq.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	readings := mpq.QueueOf[Reading](q, mpq.JSON)

	ctx := context.Background()
	if err := readings.Put(ctx, Reading{Sensor: "t1", Value: 21.5}); err != nil {
		log.Fatal(err)
	}
	err = readings.Put(ctx, Reading{Sensor: "t2", Value: math.Inf(1)})
	fmt.Println(errors.Is(err, mpq.ErrEncode), err)
	fmt.Println("waiting:", q.Len())

	msg, err := q.Get(ctx) // the message as it is
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))
	// Output:
	// true mpq: cannot encode message: codec json: json: unsupported value: +Inf
	// waiting: 1
	// {"sensor":"t1","value":21.5}
}

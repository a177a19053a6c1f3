// Command queue is the classic example of Python's multiprocessing Queue,
// with real processes: a writer process puts 'A', 'B' and 'C' with short
// random pauses while a reader process prints each value it gets; the
// parent waits for the writer, then seals the queue instead of killing the
// reader, which drains it and stops at io.EOF.
//
//	go run ./examples/queue
//
// The children are this program again, started by package proc: main
// begins with proc.Main, which runs the function a child was started for
// and exits.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// writer puts A, B and C into the queue, pausing a little before each.
var writer = proc.Define("writer", func(ctx context.Context, q *mpq.Queue) error {
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

// reader prints the values in the queue until it is sealed and empty.
var reader = proc.Define("reader", func(ctx context.Context, q *mpq.Queue, writerPid int) error {
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
		fmt.Printf("reader %d got %s from writer %d\n", os.Getpid(), v, writerPid)
	}
})

func main() {
	proc.Main() // in a child process: run its function and exit
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// run creates an anonymous queue, starts the writer and the reader with it,
// and seals the queue when the writer is done.
func run(ctx context.Context) error {
	q, err := mpq.New(nil)
	if err != nil {
		return err
	}
	defer q.Close()
	w, err := writer.Start(ctx, q)
	if err != nil {
		return err
	}
	r, err := reader.Start(ctx, q, w.Pid())
	if err != nil {
		w.Kill()
		w.Wait()
		return err
	}
	fmt.Printf("parent %d: started writer %d and reader %d\n", os.Getpid(), w.Pid(), r.Pid())
	if err := w.Wait(); err != nil {
		r.Kill()
		r.Wait()
		return err
	}
	fmt.Printf("parent %d: writer done, sealing the queue\n", os.Getpid())
	if err := q.Seal(); err != nil {
		return err
	}
	if err := r.Wait(); err != nil {
		return err
	}
	fmt.Printf("parent %d: reader done\n", os.Getpid())
	return nil
}

package examples

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// writer puts A, B and C into the queue, pausing a little before each.
var writer = proc.Define("examples.writer", func(ctx context.Context, q *mpq.Queue) error {
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
var reader = proc.Define("examples.reader", func(ctx context.Context, q *mpq.Queue, writerPid int) error {
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

// Queue creates an anonymous queue, starts a writer process and a reader
// process with it, and seals the queue when the writer is done, instead of
// killing the reader, which drains it and stops at io.EOF. Every process
// prints what it does to out. Queue returns the writer's and the reader's
// process IDs.
func Queue(ctx context.Context, out io.Writer) (writerPid, readerPid int, err error) {
	q, err := mpq.New(nil)
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	opts := &proc.Options{Stdout: out, Stderr: os.Stderr}
	w, err := writer.StartWith(ctx, opts, q)
	if err != nil {
		return 0, 0, err
	}
	r, err := reader.StartWith(ctx, opts, q, w.Pid())
	if err != nil {
		w.Kill()
		w.Wait()
		return 0, 0, err
	}
	fmt.Fprintf(out, "parent %d: started writer %d and reader %d\n", os.Getpid(), w.Pid(), r.Pid())
	if err := w.Wait(); err != nil {
		r.Kill()
		r.Wait()
		return 0, 0, err
	}
	fmt.Fprintf(out, "parent %d: writer done, sealing the queue\n", os.Getpid())
	if err := q.Seal(); err != nil {
		r.Kill()
		r.Wait()
		return 0, 0, err
	}
	if err := r.Wait(); err != nil {
		return 0, 0, err
	}
	fmt.Fprintf(out, "parent %d: reader done\n", os.Getpid())
	return w.Pid(), r.Pid(), nil
}

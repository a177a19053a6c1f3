// Command workers runs one producer and two worker processes on a queue
// named by a URL, so the same program runs on shared memory or on NATS
// JetStream:
//
//	go run ./natsq/examples/workers shm:jobs
//	go run ./natsq/examples/workers nats://127.0.0.1:4222/jobs
//
// (the second needs a nats-server with JetStream; see the README's "When one
// machine is not enough"). The producer puts twelve jobs; each worker
// receives jobs, does them and acknowledges them. When the producer is done
// the parent seals the queue, the workers drain it and stop at io.EOF, and
// the parent removes the queue. Each run uses a queue of its own (the URL's
// name with the parent's PID appended), since a sealed queue stays sealed.
//
// The children are this program again, started by package proc: main begins
// with proc.Main, which runs the function a child was started for and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/natsq" // registers nats:// with mpq.OpenURL
	"github.com/mpq-go/mpq/proc"
)

// producer puts n jobs on the queue at rawURL.
var producer = proc.Define("producer", func(ctx context.Context, rawURL string, n int) error {
	q, err := mpq.OpenURL(ctx, rawURL)
	if err != nil {
		return err
	}
	defer q.Close()
	for i := 1; i <= n; i++ {
		if err := q.Put(ctx, fmt.Appendf(nil, "job %d", i)); err != nil {
			return err
		}
	}
	fmt.Printf("producer %d: put %d jobs\n", os.Getpid(), n)
	return nil
})

// worker receives jobs until the queue is sealed and empty, acknowledging
// each one once done.
var worker = proc.Define("worker", func(ctx context.Context, rawURL string) error {
	q, err := mpq.OpenURL(ctx, rawURL)
	if err != nil {
		return err
	}
	defer q.Close()
	done := 0
	for {
		d, err := q.Receive(ctx)
		if err == io.EOF {
			fmt.Printf("worker %d: queue sealed and empty after %d jobs\n", os.Getpid(), done)
			return nil
		}
		if err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond) // the work
		if err := d.Ack(); err != nil {
			return err
		}
		done++
	}
})

func main() {
	proc.Main() // in a child process: run its function and exit
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: workers URL   (shm:jobs or nats://127.0.0.1:4222/jobs)")
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1]); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, base string) error {
	rawURL, err := ownQueue(base)
	if err != nil {
		return err
	}
	q, err := mpq.OpenURL(ctx, rawURL) // creates the queue
	if err != nil {
		return err
	}
	defer q.Close()
	defer remove(rawURL)
	fmt.Println("queue", redact(rawURL))

	var workers []*proc.Process
	for range 2 {
		w, err := worker.Start(ctx, rawURL)
		if err != nil {
			return err
		}
		workers = append(workers, w)
	}
	p, err := producer.Start(ctx, rawURL, 12)
	if err != nil {
		return err
	}
	if err := p.Wait(); err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	if err := q.Seal(); err != nil {
		return err
	}
	var errs []error
	for _, w := range workers {
		errs = append(errs, w.Wait())
	}
	return errors.Join(errs...)
}

// ownQueue appends the parent's PID to the queue name of base.
func ownQueue(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	suffix := fmt.Sprintf("-%d", os.Getpid())
	switch {
	case u.Opaque != "": // shm:NAME
		u.Opaque += suffix
	case strings.Trim(u.Path, "/") != "":
		u.Path = strings.TrimRight(u.Path, "/") + suffix
	default:
		return "", fmt.Errorf("%s names no queue", base)
	}
	return u.String(), nil
}

// remove deletes the run's queue.
func remove(rawURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if strings.HasPrefix(rawURL, "nats:") {
		err = natsq.RemoveURL(ctx, rawURL)
	} else {
		u, _ := url.Parse(rawURL)
		opts := &mpq.Options{Dir: u.Query().Get("dir")}
		err = mpq.Remove(u.Opaque, opts)
	}
	if err != nil {
		log.Print(err)
	}
}

func redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return rawURL
}

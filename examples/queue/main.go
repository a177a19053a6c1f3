// Command queue is the classic multiprocessing Queue example with real
// processes: a writer process puts 'A', 'B' and 'C' with short random pauses
// while a reader process prints each value it gets; the parent waits for the
// writer, then seals the queue instead of killing the reader, which drains
// it and stops at io.EOF.
//
//	go run ./examples/queue
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"time"

	"mpq"
)

// roleEnv tells a re-executed copy of this program which part to play.
const roleEnv = "MPQ_EXAMPLE_ROLE"

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		if err := child(role, os.Stdout); err != nil {
			log.Fatalf("%s: %v", role, err)
		}
		return
	}
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run creates an anonymous queue and starts the writer and the reader as
// child processes, handing each the queue's file as descriptor 3.
func run(w io.Writer) error {
	out := &lockedWriter{w: w} // both children's output is copied to it concurrently
	q, err := mpq.New(nil)
	if err != nil {
		return err
	}
	defer q.Close()
	fmt.Fprintf(out, "parent %d: starting writer and reader\n", os.Getpid())

	start := func(role string) (*exec.Cmd, error) {
		f, err := q.File()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe, os.Args[1:]...)
		cmd.Env = append(os.Environ(), roleEnv+"="+role)
		cmd.ExtraFiles = []*os.File{f}
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		return cmd, cmd.Start()
	}
	reader, err := start("reader")
	if err != nil {
		return err
	}
	writer, err := start("writer")
	if err != nil {
		reader.Process.Kill()
		reader.Wait()
		return err
	}
	werr := writer.Wait()
	fmt.Fprintf(out, "parent %d: writer done, sealing the queue\n", os.Getpid())
	if err := q.Seal(); err != nil {
		return err
	}
	return errors.Join(werr, reader.Wait())
}

// child opens the inherited queue (descriptor 3) and plays role.
func child(role string, out io.Writer) error {
	f := os.NewFile(3, "queue")
	q, err := mpq.OpenFile(f, nil)
	f.Close()
	if err != nil {
		return err
	}
	defer q.Close()
	ctx := context.Background()
	switch role {
	case "writer":
		for _, v := range []string{"A", "B", "C"} {
			time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
			fmt.Fprintf(out, "writer %d: putting %s\n", os.Getpid(), v)
			if err := q.Put(ctx, []byte(v)); err != nil {
				return err
			}
		}
		return nil
	case "reader":
		for {
			msg, err := q.Get(ctx)
			if err == io.EOF {
				fmt.Fprintf(out, "reader %d: queue sealed and empty, done\n", os.Getpid())
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "reader %d: got %s\n", os.Getpid(), msg)
		}
	}
	return fmt.Errorf("unknown role %q", role)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Command queue is the classic example of Python's multiprocessing Queue,
// with real processes: a writer process puts 'A', 'B' and 'C' with short
// random pauses while a reader process prints each value it gets; the
// parent waits for the writer, then seals the queue instead of killing the
// reader, which drains it and stops at io.EOF.
//
//	go run ./examples/queue
//
// The program is [examples.Queue] (examples/queue.go). Its children are
// this program again, started by package proc: main begins with proc.Main,
// which runs the function a child was started for and exits.
package main

import (
	"context"
	"log"
	"os"

	"github.com/mpq-go/mpq/examples"
	"github.com/mpq-go/mpq/proc"
)

func main() {
	proc.Main() // in a child process: run its function and exit
	if _, _, err := examples.Queue(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

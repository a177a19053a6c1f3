// Command pipe sends numbers from one process to another through a one-way
// Pipe, as Python's multiprocessing.Pipe does: a sender process sends 0 to 4
// and closes its end; a receiver process prints each number and stops at
// io.EOF.
//
//	go run ./examples/pipe
//
// The program is [examples.Pipe] (examples/pipe.go). Its children are this
// program again, started by package proc: main begins with proc.Main,
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
	if _, _, err := examples.Pipe(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

package proc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

// square puts the squares of nums into out, as text. Functions that run in
// child processes are defined in package-level variables.
var square = proc.Define("square", func(ctx context.Context, out *mpq.Queue, nums []int) error {
	for _, n := range nums {
		if err := out.Put(ctx, fmt.Appendf(nil, "%d² = %d", n, n*n)); err != nil {
			return err
		}
	}
	return nil
})

// The program's main function starts with proc.Main (here TestMain does).
func ExampleFunc_Start() {
	ctx := context.Background()
	q, err := mpq.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	p, err := square.Start(ctx, q, []int{2, 3, 4})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
	q.Seal() // no more messages: Get returns io.EOF after the last one
	for {
		msg, err := q.Get(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(msg))
	}
	// Output:
	// 2² = 4
	// 3² = 9
	// 4² = 16
}

var divide = proc.Define("divide", func(ctx context.Context, a, b int) error {
	if b == 0 {
		return errors.New("division by zero")
	}
	_ = a / b
	return nil
})

// A function's error comes back from Wait as an *ExitError.
func ExampleExitError() {
	p, err := divide.Start(context.Background(), 1, 0)
	if err != nil {
		log.Fatal(err)
	}
	err = p.Wait()
	var e *proc.ExitError
	if errors.As(err, &e) {
		fmt.Printf("%s exited with status %d: %s\n", e.Func, e.Code, e.Message)
	}
	// Output:
	// divide exited with status 1: division by zero
}

// Arguments are checked before anything starts.
func ExampleFunc_Start_invalidArgs() {
	_, err := divide.Start(context.Background(), 1, "zero")
	fmt.Println(errors.Is(err, proc.ErrInvalidArgs))
	fmt.Println(err)
	// Output:
	// true
	// proc: invalid arguments: argument 2 of divide: want int, got string: cbor: cannot unmarshal UTF-8 text string into Go value of type int
}

var sleeper = proc.Define("sleeper", func(ctx context.Context, ready *mpq.Queue) error {
	if err := ready.Put(ctx, []byte("ready")); err != nil {
		return err
	}
	<-ctx.Done() // until Terminate
	return ctx.Err()
})

// Terminate cancels the context of the child's function.
func ExampleProcess_Terminate() {
	ctx := context.Background()
	ready, err := mpq.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ready.Close()
	p, err := sleeper.Start(ctx, ready)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ready.Get(ctx); err != nil { // the function runs
		log.Fatal(err)
	}
	p.Terminate()
	err = p.Wait()
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// true
}

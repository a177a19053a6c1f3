// Package examples holds the example programs of mpq as functions: [Queue],
// the classic writer and reader of Python's multiprocessing Queue, and
// [Pipe], a sender and a receiver on a one-way Pipe. The commands
// examples/queue and examples/pipe run them (go run ./examples/queue), and
// so does `mpq demo`.
//
// Their child processes are the running program again, started by package
// proc: a program that calls Queue or Pipe must begin its main with
// [proc.Main], as examples/queue/main.go does. Children print to the
// writer the function is given, as the parent does, at the same time: it
// must be safe for concurrent writes (an *os.File is).
package examples

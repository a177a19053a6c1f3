//go:build !linux

// The benchmark harness measures Linux: it reads /proc, uses Pdeathsig and
// SOCK_SEQPACKET socket pairs. Elsewhere it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: the benchmark harness runs on Linux only")
	os.Exit(1)
}

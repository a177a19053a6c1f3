//go:build !linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func run(context.Context, Config, func(Progress)) (*Report, error) {
	return nil, fmt.Errorf("the benchmark harness runs on Linux only: %w", errors.ErrUnsupported)
}

func isChild() bool { return false }

func childMain() int {
	fmt.Fprintln(os.Stderr, "bench child: the benchmark harness runs on Linux only")
	return 1
}

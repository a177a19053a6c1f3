//go:build linux && !mpqpool

package bench

import (
	"context"
	"errors"
)

// mpqPoolBackend stands in for mpq's proc.Pool until the pool lands.
type mpqPoolBackend struct{}

func (mpqPoolBackend) supports(r row) bool { return r.pool() }

func (mpqPoolBackend) measure(context.Context, row, limits) (Sample, error) {
	return Sample{}, errors.New("proc.Pool has not landed")
}

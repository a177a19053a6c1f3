//go:build !linux

package main

import (
	"errors"

	"github.com/mpq-go/mpq"
)

// findAnonymous finds nothing: without memfd, anonymous queues are
// unlinked temporary files that nothing names as mpq's.
func findAnonymous() []*anonQueue { return nil }

func inspectFD(anonFD) (mpq.Stats, error) { return mpq.Stats{}, errors.ErrUnsupported }

//go:build !linux

package mpq_test

import "errors"

// becomeUser is only needed by a test that runs on Linux.
func becomeUser(uid int) error { return errors.New("not supported here") }

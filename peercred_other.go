//go:build unix && !linux && !darwin && !freebsd

package mpq

import (
	"errors"
)

// socketPeerUID would return the user id of the process at the other end of
// a connected Unix socket; this system is not supported, so Listen and Dial
// turn every peer away.
func socketPeerUID(fd int) (int, error) {
	return -1, errors.New("peer credentials are not supported on this system")
}

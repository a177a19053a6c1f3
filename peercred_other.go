//go:build unix && !linux && !darwin && !freebsd

package mpq

import (
	"errors"

	"github.com/mpq-go/mpq/internal/handshake"
)

// socketPeerCred would return the credentials of the process at the other
// end of a connected Unix socket; this system is not supported, so Listen
// and Dial turn every peer away.
func socketPeerCred(fd int) (peerCred, error) {
	return peerCred{}, errors.New("peer credentials are not supported on this system")
}

// ownNamespaces returns random namespace numbers: nothing is bound.
func ownNamespaces() handshake.Namespaces {
	return handshake.Namespaces{PID: randomNamespace(), User: randomNamespace()}
}

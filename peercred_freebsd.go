package mpq

import (
	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/handshake"
)

// socketPeerCred returns the effective user id of the process at the other
// end of a connected Unix socket (LOCAL_PEERCRED); its pid is 0, unknown.
func socketPeerCred(fd int) (peerCred, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	return peerCred{uid: int(cred.Uid)}, nil
}

// ownNamespaces returns the namespaces the handshake's MACs bind: FreeBSD
// gives no peer pid, so the pid namespace is a random number that matches
// nobody's and pids are not bound; the uids are (jails share them).
func ownNamespaces() handshake.Namespaces {
	return handshake.Namespaces{PID: randomNamespace(), User: 1}
}

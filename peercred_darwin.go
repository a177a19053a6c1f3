package mpq

import (
	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/handshake"
)

// socketPeerCred returns the effective user id (LOCAL_PEERCRED) and the
// pid (LOCAL_PEERPID) of the process at the other end of a connected Unix
// socket.
func socketPeerCred(fd int) (peerCred, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return peerCred{}, err
	}
	return peerCred{uid: int(cred.Uid), pid: pid}, nil
}

// ownNamespaces returns the namespaces the handshake's MACs bind: macOS has
// no pid or user namespaces, so every process is in the same (1) and the
// pids and uids are bound.
func ownNamespaces() handshake.Namespaces { return handshake.Namespaces{PID: 1, User: 1} }

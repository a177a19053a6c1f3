package mpq

import (
	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/handshake"
)

// socketPeerCred returns the effective user id and the pid of the process
// at the other end of a connected Unix socket: the one that connected, or
// the one that listened. The pid is as this process's pid namespace sees
// it, 0 if that process is not visible there.
func socketPeerCred(fd int) (peerCred, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	return peerCred{uid: int(cred.Uid), pid: int(cred.Pid)}, nil
}

// ownNamespaces returns the numbers of this process's pid and user
// namespaces, the inodes of /proc/self/ns/pid and /proc/self/ns/user; a
// random number for one it cannot read (no /proc), which then matches no
// peer's, so that nothing of that kind is bound into the handshake's MACs.
func ownNamespaces() handshake.Namespaces {
	ns := func(name string) uint64 {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+name, &st); err != nil {
			return randomNamespace()
		}
		return st.Ino
	}
	return handshake.Namespaces{PID: ns("pid"), User: ns("user")}
}

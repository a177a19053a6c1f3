//go:build darwin || freebsd

package mpq

import "golang.org/x/sys/unix"

// socketPeerUID returns the user id of the process at the other end of a
// connected Unix socket.
func socketPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}

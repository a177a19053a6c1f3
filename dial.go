package mpq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"github.com/mpq-go/mpq/internal/shm"
)

// DialOptions configure [Dial]. A nil *DialOptions means all defaults.
type DialOptions struct {
	// Dir is where the listener's socket is; see [ListenOptions].Dir.
	Dir string

	// Key is the listener's shared key; see [ListenOptions].Key. Dial
	// fails with ErrAuth if the listener does not prove it holds the same
	// key, or if Key is empty and the listener wants one.
	Key []byte

	// AllowUIDs lists user ids a listener may run as besides this
	// process's own; Dial refuses any other with ErrPeerRejected.
	AllowUIDs []int
}

// Dial connects to the listener called name (see [Listen]) and returns the
// connection once the handshake is done. A name nobody listens on gives an
// error wrapping fs.ErrNotExist; a listener of another user ErrPeerRejected;
// a key that differs from the listener's ErrAuth; a process without the
// descriptors for the socket and the two rings ErrTooManyFiles (nothing
// stays open, and the listener sees the handshake fail). If ctx has no
// deadline, the handshake gives up after 10 seconds.
//
// A process of a user the listener does not allow gets an error wrapping
// fs.ErrPermission (the socket file is 0600: the listener has no
// AllowUIDs) or ErrPeerRejected (it has, without this user). With a Key,
// Dial fails with ErrAuth, and sends nothing past the handshake, if the
// process at the other end does not hold the key, or holds it and is not
// the process at the other end of this socket (a relay between this
// process and the listener, or a process that put another socket at the
// name): the listener's proof of the key is bound to its pid and uid as
// this socket shows them, in one pid namespace, and to the socket file
// (see [Listen] for the limits). Another dialer that stalls its handshake
// does not delay this one.
func Dial(ctx context.Context, name string, opts *DialOptions) (*Conn, error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	dir := o.Dir
	if dir == "" {
		dir = shm.DefaultDir()
	}
	path, err := socketPath(dir, name)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			err = fmt.Errorf("%w (a socket left by a listener that is gone)", fs.ErrNotExist)
		case errors.Is(err, fs.ErrPermission):
			err = fmt.Errorf("this user (uid %d) may not connect to %s: a listener lets other users connect only when it lists them in ListenOptions.AllowUIDs, in a directory they can search: %w",
				os.Geteuid(), path, err)
		}
		return nil, cmp.Or(shm.ExplainLimit(fmt.Sprintf("dial %s in %s", name, dir), err), fmt.Errorf("mpq: dial %s in %s: %w", name, dir, err))
	}
	sock := nc.(*net.UnixConn)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultHandshakeTimeout)
		defer cancel()
	}
	c, err := withDeadline(ctx, sock, func() (*Conn, error) { return dialHandshake(sock, path, &o) })
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("mpq: dial %s: %w", name, err)
	}
	return c, nil
}

package mpq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/handshake"
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
		if errors.Is(err, syscall.ECONNREFUSED) {
			err = fmt.Errorf("%w (a socket left by a listener that is gone)", fs.ErrNotExist)
		}
		return nil, cmp.Or(shm.ExplainLimit(fmt.Sprintf("dial %s in %s", name, dir), err), fmt.Errorf("mpq: dial %s in %s: %w", name, dir, err))
	}
	sock := nc.(*net.UnixConn)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultHandshakeTimeout)
		defer cancel()
	}
	c, err := withDeadline(ctx, sock, func() (*Conn, error) { return dialHandshake(sock, &o) })
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("mpq: dial %s: %w", name, err)
	}
	return c, nil
}

// dialHandshake is the dialer's side of the handshake: it checks the
// hello, sends the reply, and opens the rings the verdict brings.
func dialHandshake(sock *net.UnixConn, o *DialOptions) (*Conn, error) {
	hello, err := readHello(sock, o.AllowUIDs)
	if err != nil {
		return nil, err
	}
	reply := handshake.Reply{Key: len(o.Key) > 0, Nonce: handshake.NewNonce()}
	if reply.Key {
		reply.MAC = handshake.DialerMAC(o.Key, hello.Nonce, reply.Nonce)
	}
	if _, err := sock.Write(reply.Marshal()); err != nil {
		return nil, err
	}
	v, err := awaitVerdict(sock)
	if err != nil {
		return nil, err
	}
	defer closeFiles(v.files)
	if err := checkListener(sock, o.Key, hello, reply.Nonce, v); err != nil {
		return nil, tellListener(sock, err)
	}
	in, out, err := openRings(v.files)
	if err != nil {
		return nil, tellListener(sock, err)
	}
	if _, err := sock.Write(handshake.Final{Status: handshake.StatusOK}.Marshal()); err != nil {
		in.Close()
		out.Close()
		return nil, err
	}
	return newConn(sock, in, out), nil
}

// readHello checks the user the listener runs as and reads its hello.
func readHello(sock *net.UnixConn, allow []int) (handshake.Hello, error) {
	var hello handshake.Hello
	uid, err := peerUID(sock)
	if err != nil {
		return hello, err
	}
	if !uidAllowed(uid, allow) {
		return hello, fmt.Errorf("%w: the listener runs as uid %d", ErrPeerRejected, uid)
	}
	b := make([]byte, handshake.HelloSize)
	if _, err := io.ReadFull(sock, b); err != nil {
		return hello, fmt.Errorf("%w: no hello from the listener: %w", ErrHandshake, err)
	}
	if err := hello.Unmarshal(b); err != nil {
		return hello, fmt.Errorf("%w: the listener speaks another protocol (%w)", ErrHandshake, err)
	}
	if hello.Status == handshake.StatusRejected {
		return hello, fmt.Errorf("%w: the listener does not accept this user", ErrPeerRejected)
	}
	return hello, nil
}

// A receivedVerdict is the listener's verdict with the descriptors that
// came with it.
type receivedVerdict struct {
	handshake.Verdict
	files     []*os.File // closed by the caller
	ferr      error      // from parsing the control message
	truncated bool       // MSG_CTRUNC: the kernel dropped descriptors that did not fit
}

// awaitVerdict reads the listener's verdict and the descriptors with it. It
// returns an error, and closes the descriptors, if the listener refused.
func awaitVerdict(sock *net.UnixConn) (*receivedVerdict, error) {
	b := make([]byte, handshake.VerdictSize)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room for more than we expect, to close extras
	n, oobn, flags, _, err := sock.ReadMsgUnix(b, oob)
	if err != nil {
		return nil, fmt.Errorf("%w: no verdict from the listener: %w", ErrHandshake, err)
	}
	v := &receivedVerdict{truncated: flags&unix.MSG_CTRUNC != 0}
	v.files, v.ferr = receivedFiles(oob[:oobn])
	fail := func(err error) (*receivedVerdict, error) {
		closeFiles(v.files)
		return nil, err
	}
	if n < len(b) {
		if _, err := io.ReadFull(sock, b[n:]); err != nil {
			return fail(fmt.Errorf("%w: short verdict from the listener: %w", ErrHandshake, err))
		}
	}
	if err := v.Unmarshal(b); err != nil {
		return fail(fmt.Errorf("%w: the listener speaks another protocol (%w)", ErrHandshake, err))
	}
	switch v.Status {
	case handshake.StatusOK:
		return v, nil
	case handshake.StatusAuth:
		return fail(fmt.Errorf("%w: the listener refused this process's key", ErrAuth))
	}
	return fail(fmt.Errorf("%w: the listener refused the handshake (status %d)", ErrHandshake, v.Status))
}

// checkListener checks the listener's proof of the key (its answer to the
// dialer's nonce) and that its verdict brought the two rings.
func checkListener(sock *net.UnixConn, key []byte, hello handshake.Hello, nonce handshake.Nonce, v *receivedVerdict) error {
	if hello.Key != (len(key) > 0) {
		has := "a key and this process none"
		if len(key) > 0 {
			has = "no key"
		}
		return fmt.Errorf("%w: the listener has %s", ErrAuth, has)
	}
	if len(key) > 0 && !v.MAC.Equal(handshake.ListenerMAC(key, hello.Nonce, nonce)) {
		return fmt.Errorf("%w: the listener does not hold the key", ErrAuth)
	}
	if v.ferr != nil || len(v.files) != 2 {
		// The kernel drops the descriptors that do not fit in this
		// process's table, and says only that it cut the message short.
		if v.truncated {
			if err := shm.ExplainLimit("receive the connection's rings from the listener", descriptorLeft(sock)); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: the listener sent %d descriptors, not 2 rings (%v)", ErrHandshake, len(v.files), v.ferr)
	}
	return nil
}

// openRings opens the rings of the descriptors the listener sent: the
// dialer receives from the first and sends to the second.
func openRings(files []*os.File) (in, out *Queue, err error) {
	in, err = openConnRing(files[0])
	if err != nil {
		return nil, nil, cmp.Or(shm.ExplainLimit("open the connection's receiving ring", err), err)
	}
	out, err = openConnRing(files[1])
	if err != nil {
		in.Close()
		return nil, nil, cmp.Or(shm.ExplainLimit("open the connection's sending ring", err), err)
	}
	return in, out, nil
}

// tellListener sends the final status that says why the dialer gives up
// (so that Accept fails as Dial does) and returns err.
func tellListener(sock *net.UnixConn, err error) error {
	st := handshake.StatusBad
	if errors.Is(err, ErrAuth) {
		st = handshake.StatusAuth
	}
	sock.Write(handshake.Final{Status: st}.Marshal())
	return err
}

// closeFiles closes files.
func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// descriptorLeft returns the error of making one more descriptor in this
// process, or nil if it can (and did, and closed it).
func descriptorLeft(sock *net.UnixConn) error {
	raw, err := sock.SyscallConn()
	if err != nil {
		return nil
	}
	var derr error
	raw.Control(func(fd uintptr) {
		var nfd int
		if nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); derr == nil {
			unix.Close(nfd)
		}
	})
	return derr
}

// receivedFiles returns the descriptors passed in oob.
func receivedFiles(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "mpq-ring"))
		}
	}
	return files, nil
}

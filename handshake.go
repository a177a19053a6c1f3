package mpq

// The handshake by which Accept and Dial open a connection, over the
// socket: the listener's side (Listener.handshake) and the dialer's
// (dialHandshake). The messages and their bytes are in package
// internal/handshake, whose comment documents the format.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/handshake"
	"github.com/mpq-go/mpq/internal/shm"
)

// errSilentPeer is a peer that closed its socket without sending a byte.
var errSilentPeer = errors.New("peer left without a word")

// withDeadline runs a handshake on sock that gives up when ctx is done.
func withDeadline(ctx context.Context, sock *net.UnixConn, f func() (*Conn, error)) (*Conn, error) {
	if d, ok := ctx.Deadline(); ok {
		sock.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { sock.SetDeadline(time.Unix(1, 0)) })
	c, err := f()
	stop()
	if err != nil && (ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)) {
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded
		}
		err = fmt.Errorf("%w: no answer in time: %w", ErrHandshake, cause)
	}
	if c == nil {
		return nil, err
	}
	if err := sock.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// handshake is the listener's side, with a peer whose user is allowed:
// the hello, the dialer's reply, the verdict with the two rings, and the
// dialer's final word.
func (l *Listener) handshake(sock *net.UnixConn, peer peerCred) (*Conn, error) {
	hello := handshake.Hello{Key: len(l.opts.Key) > 0, Nonce: handshake.NewNonce(), NS: selfNamespaces()}
	// A write error shows in the read that follows: the peer may have sent
	// something before it left.
	sock.Write(hello.Marshal())
	b, err := readReply(sock)
	if err != nil {
		return nil, err
	}
	verdict, err := l.checkReply(b, hello, peer)
	if err != nil {
		sock.Write(verdict.Marshal())
		return nil, err
	}
	rings, err := l.makeRings(peer.uid)
	if err != nil {
		verdict.Status = handshake.StatusBad
		sock.Write(verdict.Marshal())
		return nil, err
	}
	return rings.offer(sock, verdict)
}

// reject sends the hello that turns away a peer whose user is not allowed,
// its last message, and returns the error for Accept.
func reject(sock *net.UnixConn, uid int) error {
	sock.SetDeadline(time.Now().Add(time.Second)) // a fresh socket's buffer takes the hello at once
	sock.Write(handshake.Hello{Status: handshake.StatusRejected, Nonce: handshake.NewNonce()}.Marshal())
	return fmt.Errorf("%w: peer runs as uid %d", ErrPeerRejected, uid)
}

// readReply reads the bytes of the dialer's reply. A peer that leaves
// without sending one gives errSilentPeer.
func readReply(sock *net.UnixConn) ([]byte, error) {
	b := make([]byte, handshake.ReplySize)
	if n, err := io.ReadFull(sock, b); err != nil {
		// A probe that closes before reading the hello resets the socket.
		if n == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
			return nil, errSilentPeer
		}
		return nil, fmt.Errorf("%w: %d bytes of handshake from the peer: %w", ErrHandshake, n, err)
	}
	return b, nil
}

// checkReply checks the dialer's reply to hello from peer and returns the
// verdict: ok with the listener's proof of the key, or, with the error,
// the status that turns the peer away.
func (l *Listener) checkReply(b []byte, hello handshake.Hello, peer peerCred) (handshake.Verdict, error) {
	var reply handshake.Reply
	if err := reply.Unmarshal(b); err != nil {
		return handshake.Verdict{Status: handshake.StatusBad}, fmt.Errorf("%w: the peer speaks another protocol (%w)", ErrHandshake, err)
	}
	key := l.opts.Key
	if reply.Key != (len(key) > 0) {
		has := "no key"
		if reply.Key {
			has = "a key and the listener none"
		}
		return handshake.Verdict{Status: handshake.StatusAuth}, fmt.Errorf("%w: the peer has %s", ErrAuth, has)
	}
	if len(key) == 0 {
		return handshake.Verdict{}, nil
	}
	bind := handshake.Binding{
		ListenerNS: hello.NS, DialerNS: reply.NS,
		ListenerPID: l.pid, DialerPID: peer.pid,
		ListenerUID: l.uid, DialerUID: peer.uid,
		SocketDev: l.sock.dev, SocketIno: l.sock.ino,
	}
	if !reply.MAC.Equal(handshake.DialerMAC(key, hello.Nonce, reply.Nonce, bind)) {
		return handshake.Verdict{Status: handshake.StatusAuth}, fmt.Errorf("%w: the peer (pid %d) has another key, or relays the handshake of a process that has it", ErrAuth, peer.pid)
	}
	return handshake.Verdict{MAC: handshake.ListenerMAC(key, hello.Nonce, reply.Nonce, bind)}, nil
}

// listenerRings are the two rings of a connection: the listener's handles,
// and the ones whose descriptors go to the dialer. The dialer receives from
// toD and sends to fromD.
type listenerRings struct {
	toD, fromD         *handle
	toDPeer, fromDPeer *handle
}

// makeRings makes the rings of a connection with a peer that runs as uid.
func (l *Listener) makeRings(uid int) (*listenerRings, error) {
	opts := &Options{Capacity: l.opts.Capacity}
	toD, toDPeer, err := connRing(opts)
	if err != nil {
		return nil, err
	}
	fromD, fromDPeer, err := connRing(opts)
	if err != nil {
		toD.Close()
		toDPeer.Close()
		return nil, err
	}
	if uid != os.Getuid() {
		// The peer reopens the rings through /proc/self/fd to lock its
		// slot, which takes permission on the file. A memfd has no path:
		// only processes given its descriptor reach it.
		for _, q := range []*handle{toD, fromD} {
			if err := q.f.Chmod(0o666); err != nil {
				closeAll(toD, toDPeer, fromD, fromDPeer)
				return nil, err
			}
		}
	}
	return &listenerRings{toD: toD, fromD: fromD, toDPeer: toDPeer, fromDPeer: fromDPeer}, nil
}

// offer sends the verdict with the rings and waits for the dialer to say
// it opened them.
func (r *listenerRings) offer(sock *net.UnixConn, verdict handshake.Verdict) (*Conn, error) {
	err := sendRings(sock, verdict.Marshal(), r.toDPeer, r.fromDPeer)
	r.toDPeer.Close() // the dialer opens its own handles from the descriptors
	r.fromDPeer.Close()
	if err == nil {
		err = awaitFinal(sock)
	}
	if err != nil {
		closeAll(r.toD, r.fromD)
		return nil, err
	}
	return newConn(sock, r.fromD, r.toD), nil
}

// awaitFinal reads the dialer's last word, and returns nil if it opened the
// rings.
func awaitFinal(sock *net.UnixConn) error {
	b := make([]byte, handshake.FinalSize)
	if _, err := io.ReadFull(sock, b); err != nil {
		return fmt.Errorf("%w: the peer left: %w", ErrHandshake, err)
	}
	var final handshake.Final
	if err := final.Unmarshal(b); err != nil {
		return fmt.Errorf("%w: the peer speaks another protocol (%w)", ErrHandshake, err)
	}
	switch final.Status {
	case handshake.StatusOK:
		return nil
	case handshake.StatusAuth:
		return fmt.Errorf("%w: the peer found the listener's proof of the key wrong", ErrAuth)
	}
	return fmt.Errorf("%w: the peer could not open the connection's rings (status %d)", ErrHandshake, final.Status)
}

// closeAll closes qs.
func closeAll(qs ...*handle) {
	for _, q := range qs {
		q.Close()
	}
}

// sendRings writes the verdict with the descriptors of the two rings.
func sendRings(sock *net.UnixConn, verdict []byte, qs ...*handle) error {
	var fds []int
	for _, q := range qs {
		f, err := q.File()
		if err != nil {
			return err
		}
		defer f.Close()
		fds = append(fds, int(f.Fd()))
	}
	_, _, err := sock.WriteMsgUnix(verdict, unix.UnixRights(fds...), nil)
	return err
}

// dialHandshake is the dialer's side of the handshake on sock, connected
// to the socket file at path: it checks the hello, sends the reply, and
// opens the rings the verdict brings.
func dialHandshake(sock *net.UnixConn, path string, o *DialOptions) (*Conn, error) {
	peer, hello, err := readHello(sock, o.AllowUIDs)
	if err != nil {
		return nil, err
	}
	reply := handshake.Reply{Key: len(o.Key) > 0, Nonce: handshake.NewNonce(), NS: selfNamespaces()}
	var bind handshake.Binding
	if reply.Key {
		// The socket file as it is now, after the connect: a relay that
		// put its own socket there for the connect and then the
		// listener's back gets past this check, but not past the pids.
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return nil, fmt.Errorf("%w: the socket file is gone: %w", ErrHandshake, err)
		}
		bind = handshake.Binding{
			ListenerNS: hello.NS, DialerNS: reply.NS,
			ListenerPID: peer.pid, DialerPID: os.Getpid(),
			ListenerUID: peer.uid, DialerUID: os.Geteuid(),
			SocketDev: uint64(st.Dev), SocketIno: uint64(st.Ino),
		}
		reply.MAC = handshake.DialerMAC(o.Key, hello.Nonce, reply.Nonce, bind)
	}
	if _, err := sock.Write(reply.Marshal()); err != nil {
		return nil, err
	}
	v, err := awaitVerdict(sock)
	if err != nil {
		return nil, err
	}
	defer closeFiles(v.files)
	if err := checkListener(sock, o.Key, hello, reply.Nonce, bind, v); err != nil {
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
func readHello(sock *net.UnixConn, allow []int) (peerCred, handshake.Hello, error) {
	var hello handshake.Hello
	peer, err := peerCredOf(sock)
	if err != nil {
		return peer, hello, err
	}
	if !uidAllowed(peer.uid, os.Geteuid(), allow) {
		return peer, hello, fmt.Errorf("%w: the listener runs as uid %d", ErrPeerRejected, peer.uid)
	}
	b := make([]byte, handshake.HelloSize)
	if _, err := io.ReadFull(sock, b); err != nil {
		return peer, hello, fmt.Errorf("%w: no hello from the listener: %w", ErrHandshake, err)
	}
	if err := hello.Unmarshal(b); err != nil {
		return peer, hello, fmt.Errorf("%w: the listener speaks another protocol (%w)", ErrHandshake, err)
	}
	if hello.Status == handshake.StatusRejected {
		return peer, hello, fmt.Errorf("%w: the listener does not accept this user (uid %d; see ListenOptions.AllowUIDs)", ErrPeerRejected, os.Geteuid())
	}
	return peer, hello, nil
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
		return fail(fmt.Errorf("%w: the listener refused this process's proof of the key: another key, or a relay between this process and the listener", ErrAuth))
	}
	return fail(fmt.Errorf("%w: the listener refused the handshake (status %d)", ErrHandshake, v.Status))
}

// checkListener checks the listener's proof of the key (its answer to the
// dialer's nonce, with bind) and that its verdict brought the two rings.
func checkListener(sock *net.UnixConn, key []byte, hello handshake.Hello, nonce handshake.Nonce, bind handshake.Binding, v *receivedVerdict) error {
	if hello.Key != (len(key) > 0) {
		has := "a key and this process none"
		if len(key) > 0 {
			has = "no key"
		}
		return fmt.Errorf("%w: the listener has %s", ErrAuth, has)
	}
	if len(key) > 0 && !v.MAC.Equal(handshake.ListenerMAC(key, hello.Nonce, nonce, bind)) {
		return fmt.Errorf("%w: the listener does not hold the key, or is a relay for one that does", ErrAuth)
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
func openRings(files []*os.File) (in, out *handle, err error) {
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

// uidAllowed reports whether a peer running as uid may connect: it runs as
// self (this side's user, as its peer sees it) or one of allow.
func uidAllowed(uid, self int, allow []int) bool {
	if uid == self {
		return true
	}
	for _, a := range allow {
		if a == uid {
			return true
		}
	}
	return false
}

// A peerCred is what the socket's credentials say of the process at the
// other end.
type peerCred struct {
	uid int // effective user id
	pid int // as this process's pid namespace sees it; 0 if it does not, or unknown
}

// peerCredOf returns the credentials of the process at the other end of
// sock.
func peerCredOf(sock *net.UnixConn) (peerCred, error) {
	raw, err := sock.SyscallConn()
	if err != nil {
		return peerCred{}, err
	}
	var cred peerCred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = socketPeerCred(int(fd)) }); err != nil {
		return peerCred{}, err
	}
	if cerr != nil {
		return peerCred{}, fmt.Errorf("mpq: peer credentials: %w", cerr)
	}
	return cred, nil
}

// selfNamespaces are this process's namespaces, as the handshake sends
// them (see handshake.Namespaces).
var selfNamespaces = sync.OnceValue(ownNamespaces)

// randomNamespace is a namespace number for one a process cannot name: it
// matches no other process's.
func randomNamespace() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1<<63
}

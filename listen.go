package mpq

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/shm"
)

// ListenOptions configure [Listen]. A nil *ListenOptions means all defaults.
type ListenOptions struct {
	// Dir is the directory of the socket file NAME.sock; the default is
	// the per-user directory of named queues (see [Options].Dir).
	Dir string

	// Key, if not empty, is a secret shared with the processes allowed to
	// connect. Before any message passes, each side proves it holds the
	// key with an HMAC-SHA256 of a random challenge from the other (as
	// multiprocessing.connection's authkey does). A peer with another key,
	// or none, fails with ErrAuth on both sides.
	Key []byte

	// AllowUIDs lists user ids whose processes may connect besides this
	// process's own. Accept turns any other peer away with ErrPeerRejected.
	AllowUIDs []int

	// HandshakeTimeout bounds the handshake with one peer in Accept, so a
	// peer that connects and stalls cannot hold Accept up. Default 10s.
	HandshakeTimeout time.Duration

	// Capacity is the ring size of each direction of accepted connections
	// (see [Options].Capacity). Default 1 MiB.
	Capacity int
}

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

// A Listener accepts connections from unrelated processes that [Dial] its
// name. Its methods are safe for concurrent use.
type Listener struct {
	name, path string
	opts       ListenOptions
	ln         *net.UnixListener
	ino        uint64 // of the socket file, removed by Close only if still ours

	conns     chan *net.UnixConn
	done      chan struct{}
	looped    chan struct{}
	closeOnce sync.Once
}

// Handshake. Every message is fixed-size:
//
//	hello   listener -> dialer: magic, version, status, flags, 4 zero bytes, listener nonce (32)
//	reply   dialer -> listener: magic, version, flags, 2 zero bytes, dialer nonce (32), dialer MAC (32)
//	verdict listener -> dialer: status, 7 zero bytes, listener MAC (32); with the two ring descriptors if status is ok
//	final   dialer -> listener: status
//
// The dialer MAC is HMAC-SHA256(key, "mpq dialer v1" | listener nonce |
// dialer nonce), the listener MAC the same with "mpq listener v1" and the
// nonces swapped; both are zero without a key.
const (
	hsMagic   = "MPQL"
	hsVersion = 1
	nonceLen  = 32
	helloLen  = 4 + 1 + 1 + 1 + 1 + nonceLen // 40
	replyLen  = 4 + 1 + 1 + 2 + nonceLen + sha256.Size
	verdLen   = 8 + sha256.Size

	hsOK       = 0
	hsRejected = 1 // the peer's uid is not allowed
	hsAuth     = 2 // key missing or wrong
	hsBad      = 3 // not a handshake of this version

	flagKey = 1
)

const defaultHandshakeTimeout = 10 * time.Second

// Listen makes a socket file NAME.sock (mode 0600) in the directory of
// opts.Dir and returns a Listener on it. A socket file left by a listener
// that is gone is replaced; a live one gives an error wrapping fs.ErrExist.
// A directory on a read-only file system gives ErrReadOnly, and one this
// user may not write to an error wrapping fs.ErrPermission; a process out
// of descriptors gets ErrTooManyFiles. A Listen that fails leaves no
// socket, descriptor or directory of its own behind.
func Listen(name string, opts *ListenOptions) (*Listener, error) {
	var o ListenOptions
	if opts != nil {
		o = *opts
	}
	if o.HandshakeTimeout < 0 || o.Capacity < 0 {
		return nil, fmt.Errorf("%w: negative HandshakeTimeout or Capacity", ErrInvalidOptions)
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = defaultHandshakeTimeout
	}
	if o.Capacity == 0 {
		o.Capacity = defaultConnCapacity
	}
	if _, err := (&Options{Capacity: o.Capacity}).settings(); err != nil {
		return nil, err
	}
	o.Key = append([]byte(nil), o.Key...)
	dir, private := o.Dir, false
	if dir == "" {
		dir, private = shm.DefaultDir(), true
	}
	path, err := socketPath(dir, name)
	if err != nil {
		return nil, err
	}
	undo, err := shm.EnsureDir(dir, private)
	if err != nil {
		return nil, err
	}
	if private {
		if err := shm.CheckPrivate(dir); err != nil {
			undo()
			return nil, err
		}
	}
	ln, ino, err := bindSocket(path)
	if err != nil {
		undo()
		return nil, fmt.Errorf("mpq: listen %s: %w", name, err)
	}
	l := &Listener{
		name: name, path: path, opts: o, ln: ln, ino: ino,
		conns: make(chan *net.UnixConn), done: make(chan struct{}), looped: make(chan struct{}),
	}
	go l.loop()
	return l, nil
}

// socketPath is where the socket of name lives in dir.
func socketPath(dir, name string) (string, error) {
	if err := shm.CheckName(name); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".sock")
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return "", fmt.Errorf("%w: socket path %s is longer than the system takes (%d bytes)", ErrInvalidName, path, len(unix.RawSockaddrUnix{}.Path)-1)
	}
	return path, nil
}

// bindSocket binds a listening socket at path, mode 0600. It binds at a
// temporary name, sets the mode, and links it into place, so the socket is
// never reachable with other permissions and a live one is never replaced.
func bindSocket(path string) (*net.UnixListener, uint64, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, fmt.Sprintf(".%x.sock", rnd))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, 0, shm.Explain("make a listening socket in "+dir, err)
	}
	ln.SetUnlinkOnClose(false)
	defer os.Remove(tmp)
	fail := func(err error) (*net.UnixListener, uint64, error) {
		ln.Close()
		return nil, 0, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(shm.Explain("make a listening socket in "+dir, err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(tmp, &st); err != nil {
		return fail(shm.Explain("make a listening socket in "+dir, err))
	}
	for range 2 {
		err = os.Link(tmp, path)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
		if !staleSocket(path) {
			return fail(fmt.Errorf("a listener is running at %s: %w", path, fs.ErrExist))
		}
		os.Remove(path)
	}
	if err != nil {
		return fail(shm.Explain("link the listening socket to "+path, err))
	}
	return ln, uint64(st.Ino), nil
}

// staleSocket reports whether path is a socket nobody listens on.
func staleSocket(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSocket == 0 {
		return false
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// loop accepts sockets and hands them to Accept calls.
func (l *Listener) loop() {
	defer close(l.looped)
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors, say
			continue
		}
		select {
		case l.conns <- c:
		case <-l.done:
			c.Close()
			return
		}
	}
}

// Name returns the name the listener was made with.
func (l *Listener) Name() string { return l.name }

// Path returns the path of the listener's socket file.
func (l *Listener) Path() string { return l.path }

// String describes the listener for logs.
func (l *Listener) String() string { return fmt.Sprintf("mpq.Listener(%s)", l.name) }

// Accept waits for a process to Dial this listener and returns the new
// connection once the handshake is done: the peer runs as an allowed user,
// and holds the key if the listener has one. A peer turned away makes Accept
// return an error wrapping ErrPeerRejected or ErrAuth (or ErrIncompatible for
// something that is not an mpq peer); the Listener stays open, so call
// Accept again. It returns ErrClosed once the listener is closed, or
// ctx.Err() if ctx is done first.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	for {
		var sock *net.UnixConn
		select {
		case sock = <-l.conns:
		case <-l.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		hctx, cancel := context.WithTimeout(ctx, l.opts.HandshakeTimeout)
		c, err := withDeadline(hctx, sock, func() (*Conn, error) { return l.handshake(sock) })
		cancel()
		if err == nil {
			return c, nil
		}
		sock.Close()
		if errors.Is(err, errSilentPeer) && ctx.Err() == nil {
			continue // connected and left without a word: a probe, not a peer
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("mpq: accept on %s: %w", l.name, err)
	}
}

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

func (l *Listener) handshake(sock *net.UnixConn) (*Conn, error) {
	uid, err := peerUID(sock)
	if err != nil {
		return nil, err
	}
	status := byte(hsOK)
	if !uidAllowed(uid, l.opts.AllowUIDs) {
		status = hsRejected
	}
	hello := make([]byte, helloLen)
	copy(hello, hsMagic)
	hello[4], hello[5] = hsVersion, status
	if len(l.opts.Key) > 0 {
		hello[6] = flagKey
	}
	nonceL := hello[8:]
	rand.Read(nonceL)
	// A write error shows in the read that follows: the peer may have sent
	// something before it left.
	sock.Write(hello)
	if status == hsRejected {
		return nil, fmt.Errorf("%w: peer runs as uid %d", ErrPeerRejected, uid)
	}
	reply := make([]byte, replyLen)
	if n, err := io.ReadFull(sock, reply); err != nil {
		if n == 0 && err == io.EOF {
			return nil, errSilentPeer
		}
		return nil, fmt.Errorf("%w: %d bytes of handshake from the peer: %w", ErrHandshake, n, err)
	}
	verdict := make([]byte, verdLen)
	refuse := func(st byte, err error) (*Conn, error) {
		verdict[0] = st
		sock.Write(verdict)
		return nil, err
	}
	if string(reply[:4]) != hsMagic || reply[4] != hsVersion {
		return refuse(hsBad, fmt.Errorf("%w: the peer speaks another protocol (version %d)", ErrHandshake, reply[4]))
	}
	nonceD, macD := reply[8:8+nonceLen], reply[8+nonceLen:]
	peerKey := reply[5]&flagKey != 0
	if peerKey != (len(l.opts.Key) > 0) {
		return refuse(hsAuth, fmt.Errorf("%w: the peer has %s", ErrAuth, map[bool]string{true: "a key and the listener none", false: "no key"}[peerKey]))
	}
	if len(l.opts.Key) > 0 && !hmac.Equal(macD, mac(l.opts.Key, "mpq dialer v1", nonceL, nonceD)) {
		return refuse(hsAuth, fmt.Errorf("%w: the peer has another key", ErrAuth))
	}
	if len(l.opts.Key) > 0 {
		copy(verdict[8:], mac(l.opts.Key, "mpq listener v1", nonceD, nonceL))
	}
	// Rings: the dialer receives from the first and sends to the second.
	opts := &Options{Capacity: l.opts.Capacity}
	toD, toDPeer, err := connRing(opts)
	if err != nil {
		return refuse(hsBad, err)
	}
	fromD, fromDPeer, err := connRing(opts)
	if err != nil {
		toD.Close()
		toDPeer.Close()
		return refuse(hsBad, err)
	}
	if uid != os.Getuid() {
		// The peer reopens the rings through /proc/self/fd to lock its
		// slot, which takes permission on the file. A memfd has no path:
		// only processes given its descriptor reach it.
		for _, q := range []*handle{toD, fromD} {
			if err := q.f.Chmod(0o666); err != nil {
				closeAll(toD, toDPeer, fromD, fromDPeer)
				return refuse(hsBad, err)
			}
		}
	}
	err = sendRings(sock, verdict, toDPeer, fromDPeer)
	toDPeer.Close() // the dialer opens its own handles from the descriptors
	fromDPeer.Close()
	if err != nil {
		toD.Close()
		fromD.Close()
		return nil, err
	}
	var final [1]byte
	if _, err := io.ReadFull(sock, final[:]); err != nil || final[0] != hsOK {
		toD.Close()
		fromD.Close()
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: the peer left: %w", ErrHandshake, err)
		case final[0] == hsAuth:
			return nil, fmt.Errorf("%w: the peer found the listener's proof of the key wrong", ErrAuth)
		}
		return nil, fmt.Errorf("%w: the peer could not open the connection's rings (status %d)", ErrHandshake, final[0])
	}
	return newConn(sock, fromD, toD), nil
}

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

func mac(key []byte, label string, a, b []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	h.Write(a)
	h.Write(b)
	return h.Sum(nil)
}

func uidAllowed(uid int, allow []int) bool {
	if uid == os.Getuid() {
		return true
	}
	for _, a := range allow {
		if a == uid {
			return true
		}
	}
	return false
}

// peerUID returns the user id of the process at the other end of sock.
func peerUID(sock *net.UnixConn) (int, error) {
	raw, err := sock.SyscallConn()
	if err != nil {
		return 0, err
	}
	uid, uerr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, uerr = socketPeerUID(int(fd)) }); err != nil {
		return 0, err
	}
	if uerr != nil {
		return 0, fmt.Errorf("mpq: peer credentials: %w", uerr)
	}
	return uid, nil
}

// Close stops the listener and removes its socket file. Connections it
// accepted stay open. Accept calls waiting return ErrClosed. Close is
// idempotent: later calls return ErrClosed.
func (l *Listener) Close() error {
	err := ErrClosed
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
		<-l.looped
		var st unix.Stat_t
		if unix.Lstat(l.path, &st) == nil && uint64(st.Ino) == l.ino {
			os.Remove(l.path)
		}
	})
	return err
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

func dialHandshake(sock *net.UnixConn, o *DialOptions) (*Conn, error) {
	uid, err := peerUID(sock)
	if err != nil {
		return nil, err
	}
	if !uidAllowed(uid, o.AllowUIDs) {
		return nil, fmt.Errorf("%w: the listener runs as uid %d", ErrPeerRejected, uid)
	}
	hello := make([]byte, helloLen)
	if _, err := io.ReadFull(sock, hello); err != nil {
		return nil, fmt.Errorf("%w: no hello from the listener: %w", ErrHandshake, err)
	}
	if string(hello[:4]) != hsMagic || hello[4] != hsVersion {
		return nil, fmt.Errorf("%w: the listener speaks another protocol", ErrHandshake)
	}
	if hello[5] == hsRejected {
		return nil, fmt.Errorf("%w: the listener does not accept this user", ErrPeerRejected)
	}
	nonceL := hello[8:]
	reply := make([]byte, replyLen)
	copy(reply, hsMagic)
	reply[4] = hsVersion
	nonceD := reply[8 : 8+nonceLen]
	rand.Read(nonceD)
	if len(o.Key) > 0 {
		reply[5] = flagKey
		copy(reply[8+nonceLen:], mac(o.Key, "mpq dialer v1", nonceL, nonceD))
	}
	if _, err := sock.Write(reply); err != nil {
		return nil, err
	}
	verdict := make([]byte, verdLen)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room for more than we expect, to close extras
	n, oobn, flags, _, err := sock.ReadMsgUnix(verdict, oob)
	if err != nil {
		return nil, fmt.Errorf("%w: no verdict from the listener: %w", ErrHandshake, err)
	}
	files, ferr := receivedFiles(oob[:oobn])
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if n < verdLen {
		if _, err := io.ReadFull(sock, verdict[n:]); err != nil {
			return nil, fmt.Errorf("%w: short verdict from the listener: %w", ErrHandshake, err)
		}
	}
	switch verdict[0] {
	case hsOK:
	case hsAuth:
		return nil, fmt.Errorf("%w: the listener refused this process's key", ErrAuth)
	default:
		return nil, fmt.Errorf("%w: the listener refused the handshake (status %d)", ErrHandshake, verdict[0])
	}
	fail := func(err error) (*Conn, error) {
		st := byte(hsBad)
		if errors.Is(err, ErrAuth) {
			st = hsAuth
		}
		sock.Write([]byte{st})
		return nil, err
	}
	if (hello[6]&flagKey != 0) != (len(o.Key) > 0) {
		return fail(fmt.Errorf("%w: the listener has %s", ErrAuth, map[bool]string{true: "no key", false: "a key and this process none"}[len(o.Key) > 0]))
	}
	if len(o.Key) > 0 && !hmac.Equal(verdict[8:], mac(o.Key, "mpq listener v1", nonceD, nonceL)) {
		return fail(fmt.Errorf("%w: the listener does not hold the key", ErrAuth))
	}
	if ferr != nil || len(files) != 2 {
		// The kernel drops the descriptors that do not fit in this
		// process's table, and says only that it cut the message short.
		if flags&unix.MSG_CTRUNC != 0 {
			if err := shm.ExplainLimit("receive the connection's rings from the listener", descriptorLeft(sock)); err != nil {
				return fail(err)
			}
		}
		return fail(fmt.Errorf("%w: the listener sent %d descriptors, not 2 rings (%v)", ErrHandshake, len(files), ferr))
	}
	in, err := openConnRing(files[0])
	if err != nil {
		return fail(cmp.Or(shm.ExplainLimit("open the connection's receiving ring", err), err))
	}
	out, err := openConnRing(files[1])
	if err != nil {
		in.Close()
		return fail(cmp.Or(shm.ExplainLimit("open the connection's sending ring", err), err))
	}
	if _, err := sock.Write([]byte{hsOK}); err != nil {
		in.Close()
		out.Close()
		return nil, err
	}
	return newConn(sock, in, out), nil
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

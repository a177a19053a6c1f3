package mpq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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

// defaultHandshakeTimeout bounds a handshake: Accept's unless
// [ListenOptions].HandshakeTimeout says otherwise, and Dial's if its context
// has no deadline.
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

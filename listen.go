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
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/shm"
)

// ListenOptions configure [Listen]. A nil *ListenOptions means all defaults.
type ListenOptions struct {
	// Dir is the directory of the socket file NAME.sock; the default is
	// the per-user directory of named queues (see [Options].Dir), which
	// only this user can reach.
	Dir string

	// Key, if not empty, is a secret shared with the processes allowed to
	// connect. Before any message passes, each side proves it holds the
	// key with an HMAC-SHA256 of a random challenge from the other (as
	// multiprocessing.connection's authkey does), bound to the two
	// processes and the socket file (their pids, uids and namespaces as
	// the socket's peer credentials show them, and the file's inode). A
	// peer with another key, or none, fails with ErrAuth on both sides, and
	// so does a process without the key that relays the handshake between
	// a dialer and the listener; it receives no ring. Across pid
	// namespaces the pids are not bound (see [Listen]).
	Key []byte

	// AllowUIDs lists user ids whose processes may connect besides this
	// process's own. Accept turns any other peer away with ErrPeerRejected
	// (the check is the socket's peer credentials, SO_PEERCRED).
	//
	// Without AllowUIDs the socket file is mode 0600: only this user can
	// connect. With AllowUIDs it is mode 0666, so that the allowed users
	// can connect at all; every other user then reaches the handshake too,
	// and is turned away at its first message. Listen does not change
	// directory modes: the allowed users must be able to search Dir and
	// every directory above it, so AllowUIDs needs a Dir of their reach
	// (the default per-user directory is 0700). Listen checks the
	// directories' modes and fails with ErrInvalidOptions, saying which
	// one, if an allowed uid (other than 0) could not get through it:
	// neither its owner with the owner's search bit, nor given the
	// group's or others' search bit. (Group membership is not looked up:
	// a directory searchable by its group only passes the check.)
	AllowUIDs []int

	// HandshakeTimeout bounds the handshake with one peer, so that a peer
	// that connects and stalls is dropped. Default 10s.
	HandshakeTimeout time.Duration

	// MaxHandshakes bounds the handshakes in flight at once, each with its
	// own goroutine; default 64. When a peer connects with MaxHandshakes
	// in flight, the one that started first is dropped (its Dial fails
	// with ErrHandshake), so that peers that stall cannot keep a
	// well-behaved one out: a handshake takes a millisecond, a stalled one
	// is dropped after at most MaxHandshakes newer peers. Peers of users
	// that are not allowed never count: they are turned away before their
	// handshake starts. MaxHandshakes also bounds the connections whose
	// handshake is done and that wait for Accept: with that many waiting,
	// the listener takes no new sockets (they wait in the kernel's backlog)
	// until Accept takes one.
	MaxHandshakes int

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
	sock       socketID // of the socket file, removed by Close only if still ours
	// The user and process the socket was made by, which peers see
	// (SO_PEERCRED holds the credentials of listen(2)) whatever this
	// process's effective uid has become since: bound into the MACs.
	uid, pid int

	ctx        context.Context // canceled by Close: ends the handshakes in flight
	cancel     context.CancelFunc
	done       chan struct{}
	looped     chan struct{}
	handshakes sync.WaitGroup
	closeOnce  sync.Once

	mu     sync.Mutex
	flight []inFlight    // handshakes running, oldest first
	ready  []accepted    // handshakes done, oldest first, for Accept
	conns  int           // how many of ready are connections (the others are errors)
	wake   chan struct{} // (1 buffered) ready has something for Accept
	room   chan struct{} // (1 buffered) ready has room for another connection
}

// An accepted is a handshake's outcome for Accept: a connection or the
// error that turned the peer away.
type accepted struct {
	c   *Conn
	err error
}

// A socketID names a socket file: its device and inode numbers.
type socketID struct{ dev, ino uint64 }

// defaultHandshakeTimeout bounds a handshake: Accept's unless
// [ListenOptions].HandshakeTimeout says otherwise, and Dial's if its context
// has no deadline.
const defaultHandshakeTimeout = 10 * time.Second

// defaultMaxHandshakes is [ListenOptions].MaxHandshakes by default.
const defaultMaxHandshakes = 64

// Listen makes a socket file NAME.sock in the directory of opts.Dir and
// returns a Listener on it; it runs the handshakes with the peers that
// connect, concurrently, for [Listener.Accept] to return.
//
// Who can do what:
//   - A process of a user that is not allowed (not this process's user,
//     not in AllowUIDs) cannot connect without AllowUIDs (the file is 0600);
//     with AllowUIDs it is turned away at its first message, before any
//     handshake starts, and takes no handshake slot.
//   - A process of an allowed user without the Key (when there is one)
//     fails with ErrAuth and receives no ring, whether it dials itself or
//     relays the handshake of a dialer that holds the key (its own name,
//     or a socket it put in place of this one). The pids are bound only
//     when the dialer and the listener share a pid namespace; across pid
//     namespaces the MACs bind the socket file's inode instead, which
//     stops a relay on another name but not one that swaps its own socket
//     into the path just for the dialer's connect (and back) in a
//     directory it can write: keep the socket in a directory only trusted
//     users can write. Without a Key, any process of an allowed user
//     connects.
//   - A stalled peer (silent, or stopped partway) holds one handshake slot
//     until HandshakeTimeout or until MaxHandshakes newer peers connect;
//     it never delays another peer's handshake or Accept.
//
// A socket file left by a listener that is gone is replaced (under a lock
// on the companion file .NAME.sock.lock, which stays, so that two Listens
// never remove each other's socket); a live one gives an error wrapping
// fs.ErrExist. A directory on a read-only file system gives ErrReadOnly,
// and one this user may not write to an error wrapping fs.ErrPermission; a
// process out of descriptors gets ErrTooManyFiles. A Listen that fails
// leaves no socket, descriptor or directory of its own behind.
func Listen(name string, opts *ListenOptions) (*Listener, error) {
	var o ListenOptions
	if opts != nil {
		o = *opts
	}
	if o.HandshakeTimeout < 0 || o.Capacity < 0 || o.MaxHandshakes < 0 {
		return nil, fmt.Errorf("%w: negative HandshakeTimeout, MaxHandshakes or Capacity", ErrInvalidOptions)
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = defaultHandshakeTimeout
	}
	if o.MaxHandshakes == 0 {
		o.MaxHandshakes = defaultMaxHandshakes
	}
	if o.Capacity == 0 {
		o.Capacity = defaultConnCapacity
	}
	if _, err := (&Options{Capacity: o.Capacity}).settings(); err != nil {
		return nil, err
	}
	o.Key = append([]byte(nil), o.Key...)
	o.AllowUIDs = slices.Clone(o.AllowUIDs)
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
	mode := os.FileMode(0o600)
	if len(o.AllowUIDs) > 0 {
		mode = 0o666
		if err := checkReach(dir, o.AllowUIDs); err != nil {
			undo()
			return nil, err
		}
	}
	ln, id, err := bindSocket(path, mode)
	if err != nil {
		undo()
		return nil, fmt.Errorf("mpq: listen %s: %w", name, err)
	}
	l := &Listener{
		name: name, path: path, opts: o, ln: ln, sock: id, uid: os.Geteuid(), pid: os.Getpid(),
		done: make(chan struct{}), looped: make(chan struct{}),
		wake: make(chan struct{}, 1), room: make(chan struct{}, 1),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
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

// checkReach returns an error if one of uids (other than root, who needs
// no permission) could not get through dir or a directory above it to the
// socket, judged by the directories' mode bits (see
// [ListenOptions].AllowUIDs).
func checkReach(dir string, uids []int) error {
	// The directories the socket really is under: those of the path with
	// its symbolic links resolved, not of the path as written.
	abs, err := filepath.EvalSymlinks(dir)
	if err == nil {
		abs, err = filepath.Abs(abs)
	}
	if err != nil {
		return fmt.Errorf("mpq: check that the allowed users can reach %s: %w", dir, err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("mpq: check that the allowed users can reach %s: %w", dir, err)
		}
		for _, uid := range uids {
			if uid != 0 && !searchable(uint32(st.Mode), int(st.Uid), uid) {
				return fmt.Errorf("%w: AllowUIDs lists uid %d, which cannot reach the socket: directory %s is mode %#o and owned by uid %d; "+
					"let the allowed users search it (chmod o+x, or g+x with a group of theirs) or choose a Dir they can reach",
					ErrInvalidOptions, uid, p, st.Mode&0o7777, st.Uid)
			}
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// searchable reports whether uid may pass through a directory of mode,
// owned by owner, as far as the mode bits tell: group membership is not
// looked up, so the group's search bit counts for everyone.
func searchable(mode uint32, owner, uid int) bool {
	if owner == uid {
		return mode&0o100 != 0
	}
	return mode&0o011 != 0
}

// bindSocket binds a listening socket at path with mode. It binds at a
// temporary name, sets the mode, and links it into place, so the socket is
// never reachable with other permissions and a live one is never replaced.
func bindSocket(path string, mode os.FileMode) (*net.UnixListener, socketID, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	// Through the checked directory's descriptor, not its path: someone
	// who owns a directory on the way could point the path elsewhere once
	// it has been checked.
	d, err := shm.OpenDir(dir)
	if err != nil {
		return nil, socketID{}, err
	}
	defer d.Close()
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := fmt.Sprintf(".%x.sock", rnd)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.At(tmp), Net: "unix"})
	if err != nil {
		return nil, socketID{}, shm.Explain("make a listening socket in "+dir, err)
	}
	ln.SetUnlinkOnClose(false)
	defer d.Remove(tmp)
	fail := func(err error) (*net.UnixListener, socketID, error) {
		ln.Close()
		return nil, socketID{}, err
	}
	if err := d.Chmod(tmp, mode); err != nil {
		return fail(shm.Explain("make a listening socket in "+dir, err))
	}
	var st unix.Stat_t
	if err := d.Stat(tmp, &st); err != nil {
		return fail(shm.Explain("make a listening socket in "+dir, err))
	}
	err = d.Link(tmp, base)
	if errors.Is(err, fs.ErrExist) {
		err = replaceStale(d, tmp, path)
	}
	if err != nil {
		return fail(err)
	}
	return ln, socketID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// replaceStale links tmp in d to path's name in place of a socket file
// nobody listens on. It holds the lock of path's lock file throughout the
// check, the removal and the link, so that of several Listens that find
// the same stale socket one replaces it and the others find the new one
// live; a Listen that finds no file links without the lock, which removes
// nothing.
func replaceStale(d *shm.Dir, tmp, path string) error {
	unlock, err := lockName(d, path)
	if err != nil {
		return err
	}
	defer unlock()
	base := filepath.Base(path)
	for range 3 {
		err := d.Link(tmp, base)
		if !errors.Is(err, fs.ErrExist) {
			if err != nil {
				return shm.Explain("link the listening socket to "+path, err)
			}
			return nil
		}
		if !staleSocket(d, base) {
			return fmt.Errorf("a listener is running at %s, or a file that is not a socket is there: %w", path, fs.ErrExist)
		}
		if err := d.Remove(base); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return shm.Explain("remove the stale socket "+path, err)
		}
	}
	return fmt.Errorf("stale sockets keep appearing at %s: %w", path, fs.ErrExist)
}

// lockTimeout bounds the wait for the lock of a socket's name; its holders
// keep it for a connect and a link.
const lockTimeout = 5 * time.Second

// lockName takes the exclusive lock (flock, which belongs to the open file
// description) of the companion file .NAME.sock.lock of the socket file at
// path, made mode 0600 if missing, and returns the function that lets it
// go. The file stays. Only its owner (and root) may open it: anyone who
// could would also be able to hold the lock, and keep a listener from
// coming back after a crash.
func lockName(d *shm.Dir, path string) (unlock func(), err error) {
	lock := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
	lf, err := d.OpenAt(filepath.Base(lock), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, shm.Explain("open the lock file "+lock, err)
	}
	fd, err := unix.Dup(int(lf.Fd()))
	lf.Close()
	if err != nil {
		return nil, shm.Explain("open the lock file "+lock, err)
	}
	unix.CloseOnExec(fd)
	for wait, deadline := time.Millisecond, time.Now().Add(lockTimeout); ; wait = min(2*wait, 50*time.Millisecond) {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR || time.Now().After(deadline) {
			unix.Close(fd)
			if err == unix.EWOULDBLOCK {
				return nil, fmt.Errorf("the lock file %s has been held for %v by another process: %w", lock, lockTimeout, fs.ErrExist)
			}
			return nil, fmt.Errorf("lock %s: %w", lock, err)
		}
		time.Sleep(wait)
	}
}

// staleSocket reports whether name in d is a socket nobody listens on.
func staleSocket(d *shm.Dir, name string) bool {
	var st unix.Stat_t
	if err := d.Stat(name, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return false
	}
	c, err := net.DialTimeout("unix", d.At(name), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// An inFlight is a socket whose handshake runs, with the function that
// drops it.
type inFlight struct {
	sock *net.UnixConn
	drop context.CancelCauseFunc
}

// errDropped is the cause of a handshake dropped to make room for a newer
// peer.
var errDropped = errors.New("dropped for a newer peer")

// loop accepts sockets and starts their handshakes, while there is room for
// the connections they make.
func (l *Listener) loop() {
	defer close(l.looped)
	for l.waitRoom() {
		sock, err := l.ln.AcceptUnix()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select { // out of descriptors, say
			case <-time.After(10 * time.Millisecond):
			case <-l.done:
				return
			}
			continue
		}
		l.start(sock)
	}
}

// waitRoom waits until fewer than MaxHandshakes connections wait for
// Accept, and reports whether the listener is still open.
func (l *Listener) waitRoom() bool {
	for {
		l.mu.Lock()
		full := l.conns >= l.opts.MaxHandshakes
		l.mu.Unlock()
		if !full {
			return true
		}
		select {
		case <-l.room:
		case <-l.done:
			return false
		}
	}
}

// start turns sock's peer away if its user is not allowed, or else starts
// its handshake, dropping the oldest one in flight if MaxHandshakes are.
func (l *Listener) start(sock *net.UnixConn) {
	peer, err := peerCredOf(sock)
	if err == nil && !uidAllowed(peer.uid, l.uid, l.opts.AllowUIDs) {
		err = reject(sock, peer.uid)
	}
	if err != nil {
		sock.Close()
		l.report(accepted{err: err})
		return
	}
	ctx, drop := context.WithCancelCause(l.ctx)
	l.mu.Lock()
	if len(l.flight) >= l.opts.MaxHandshakes {
		l.flight[0].drop(errDropped)
		l.flight = l.flight[1:]
	}
	l.flight = append(l.flight, inFlight{sock, drop})
	l.mu.Unlock()
	l.handshakes.Add(1)
	go l.handshakeWith(ctx, sock, peer)
}

// handshakeWith runs the handshake with peer on sock, until ctx is done or
// the handshake timeout passes, and reports how it went to Accept.
func (l *Listener) handshakeWith(ctx context.Context, sock *net.UnixConn, peer peerCred) {
	defer l.handshakes.Done()
	hctx, stop := context.WithTimeout(ctx, l.opts.HandshakeTimeout)
	c, err := withDeadline(hctx, sock, func() (*Conn, error) { return l.handshake(sock, peer) })
	stop()
	dropped := context.Cause(ctx) == errDropped
	l.mu.Lock()
	for i, f := range l.flight {
		if f.sock == sock {
			f.drop(nil)
			l.flight = slices.Delete(l.flight, i, i+1)
			break
		}
	}
	l.mu.Unlock()
	if err == nil {
		if !l.report(accepted{c: c}) {
			c.Close()
		}
		return
	}
	sock.Close()
	if errors.Is(err, errSilentPeer) {
		return // connected and left without a word: a probe, not a peer
	}
	if dropped {
		err = fmt.Errorf("%w: dropped unfinished to make room for a newer peer (%d handshakes in flight; see ListenOptions.MaxHandshakes)", ErrHandshake, l.opts.MaxHandshakes)
	}
	l.report(accepted{err: err})
}

// report queues a handshake's outcome for Accept, and reports whether it
// did: not once the listener is closing, nor an error when MaxHandshakes
// errors are already waiting (it is dropped).
func (l *Listener) report(a accepted) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return false
	}
	if a.c == nil && len(l.ready)-l.conns >= l.opts.MaxHandshakes {
		return false
	}
	l.ready = append(l.ready, a)
	if a.c != nil {
		l.conns++
	}
	signal(l.wake)
	return true
}

// next takes the oldest outcome waiting for Accept, if there is one.
func (l *Listener) next() (accepted, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ready) == 0 {
		return accepted{}, false
	}
	a := l.ready[0]
	l.ready[0] = accepted{}
	l.ready = l.ready[1:]
	if a.c != nil {
		l.conns--
		signal(l.room)
	}
	if len(l.ready) > 0 {
		signal(l.wake) // for another Accept
	}
	return a, true
}

// signal makes a receive from ch, a channel of one buffered element,
// succeed once, without waiting.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Name returns the name the listener was made with.
func (l *Listener) Name() string { return l.name }

// Path returns the path of the listener's socket file.
func (l *Listener) Path() string { return l.path }

// String describes the listener for logs.
func (l *Listener) String() string { return fmt.Sprintf("mpq.Listener(%s)", l.name) }

// Accept returns the next connection whose handshake is done, waiting for
// one if none is: its peer runs as an allowed user, and holds the key if
// the listener has one. The handshakes run in the listener, concurrently,
// whether or not Accept is called (see [ListenOptions].MaxHandshakes), so a
// peer that stalls does not hold Accept up. A peer turned away makes
// Accept return an error wrapping ErrPeerRejected, ErrAuth or ErrHandshake
// (at most MaxHandshakes such errors wait for Accept; later ones are
// dropped); the Listener stays open, so call Accept again. Outcomes come
// in the order the handshakes ended. Accept returns ErrClosed once the
// listener is closed, or ctx.Err() if ctx is done first.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	for {
		select {
		case <-l.done:
			return nil, ErrClosed
		default:
		}
		if a, ok := l.next(); ok {
			if a.err != nil {
				return nil, fmt.Errorf("mpq: accept on %s: %w", l.name, a.err)
			}
			return a.c, nil
		}
		select {
		case <-l.wake:
		case <-l.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops the listener and removes its socket file. It ends the
// handshakes in flight and closes the connections no Accept has taken, and
// returns once their goroutines are gone. Connections Accept returned stay
// open. Accept calls waiting return ErrClosed. Close is idempotent: later
// calls return ErrClosed.
func (l *Listener) Close() error {
	err := ErrClosed
	l.closeOnce.Do(func() {
		// Remove the file while the socket still listens: a Listen that
		// looks at it meanwhile finds it live, so never removes another
		// listener's socket in our place.
		var st unix.Stat_t
		if unix.Lstat(l.path, &st) == nil && (socketID{dev: uint64(st.Dev), ino: uint64(st.Ino)}) == l.sock {
			os.Remove(l.path)
		}
		close(l.done)
		l.cancel()
		err = l.ln.Close()
		<-l.looped
		l.handshakes.Wait()
		l.mu.Lock()
		ready := l.ready
		l.ready, l.conns = nil, 0
		l.mu.Unlock()
		for _, a := range ready {
			if a.c != nil {
				a.c.Close()
			}
		}
	})
	return err
}

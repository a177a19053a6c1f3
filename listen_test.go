package mpq_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("dialer", runDialer)
}

// runDialer dials MPQ_TEST_LISTEN in MPQ_TEST_DIR with key MPQ_TEST_KEY,
// within MPQ_TEST_TIMEOUT_MS milliseconds if set (else Dial's default),
// says how that went ("connected", "rejected", "auth", "permission", or
// "error" and the error), and echoes messages until EOF.
func runDialer() error {
	opts := &mpq.DialOptions{Dir: os.Getenv("MPQ_TEST_DIR"), Key: []byte(os.Getenv("MPQ_TEST_KEY")), AllowUIDs: []int{0}}
	ctx := context.Background()
	dctx := ctx
	if ms := testutil.EnvInt("MPQ_TEST_TIMEOUT_MS", 0); ms > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	c, err := mpq.Dial(dctx, os.Getenv("MPQ_TEST_LISTEN"), opts)
	switch {
	case errors.Is(err, mpq.ErrPeerRejected):
		testutil.Say("rejected %v", err)
		return nil
	case errors.Is(err, mpq.ErrAuth):
		testutil.Say("auth %v", err)
		return nil
	case errors.Is(err, fs.ErrPermission):
		testutil.Say("permission %v", err)
		return nil
	case err != nil:
		testutil.Say("error %v", err)
		return err
	}
	testutil.Say("connected")
	for {
		m, err := c.Recv(ctx)
		if err == io.EOF {
			return c.Close()
		}
		if err != nil {
			return err
		}
		if err := c.Send(ctx, m); err != nil {
			return err
		}
	}
}

func listen(t testing.TB, name string, opts *mpq.ListenOptions) *mpq.Listener {
	t.Helper()
	l, err := mpq.Listen(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

type accepted struct {
	c   *mpq.Conn
	err error
}

func acceptAsync(ctx context.Context, l *mpq.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept(ctx)
		ch <- accepted{c, err}
	}()
	return ch
}

func TestListenDial(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	ctx := ctxT(t, 30*time.Second)
	l := listen(t, "svc", &mpq.ListenOptions{Dir: dir, Key: []byte("secret")})
	fi, err := os.Lstat(filepath.Join(dir, "svc.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file mode: got %v; want a socket with 0600", fi.Mode())
	}
	if l.Path() != filepath.Join(dir, "svc.sock") || l.Name() != "svc" {
		t.Errorf("Path, Name: got %q, %q", l.Path(), l.Name())
	}
	acc := acceptAsync(ctx, l)
	d, err := mpq.Dial(ctx, "svc", &mpq.DialOptions{Dir: dir, Key: []byte("secret")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	for i := range 10 {
		msg := []byte(fmt.Sprint("ping ", i))
		if err := d.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		got, err := a.c.Recv(ctx)
		if err != nil || string(got) != string(msg) {
			t.Fatalf("listener side Recv: got %q, %v; want %q", got, err, msg)
		}
		if err := a.c.Send(ctx, append(got, '!')); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Recv(ctx); err != nil || string(got) != string(msg)+"!" {
			t.Fatalf("dialer side Recv: got %q, %v", got, err)
		}
	}
	d.Close()
	if _, err := a.c.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after the dialer closed: got %v; want io.EOF", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: got %v; want it removed", err)
	}
	if err := l.Close(); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("second Close: got %v; want ErrClosed", err)
	}
	if _, err := l.Accept(ctx); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("Accept after Close: got %v; want ErrClosed", err)
	}
}

func TestListenDialKeys(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct {
		name             string
		listener, dialer string
		want             error
	}{
		{"same key", "k1", "k1", nil},
		{"no keys", "", "", nil},
		{"different keys", "k1", "k2", mpq.ErrAuth},
		{"dialer without key", "k1", "", mpq.ErrAuth},
		{"listener without key", "", "k2", mpq.ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, "keys", &mpq.ListenOptions{Dir: dir, Key: []byte(tc.listener)})
			acc := acceptAsync(ctx, l)
			d, err := mpq.Dial(ctx, "keys", &mpq.DialOptions{Dir: dir, Key: []byte(tc.dialer)})
			a := <-acc
			for _, c := range []*mpq.Conn{d, a.c} {
				if c != nil {
					defer c.Close()
				}
			}
			if !errors.Is(err, tc.want) || err == nil != (tc.want == nil) {
				t.Errorf("Dial: got %v; want %v", err, tc.want)
			}
			if !errors.Is(a.err, tc.want) || a.err == nil != (tc.want == nil) {
				t.Errorf("Accept: got %v; want %v", a.err, tc.want)
			}
			if tc.want != nil {
				// The listener stays usable after turning a peer away.
				acc := acceptAsync(ctx, l)
				d, err := mpq.Dial(ctx, "keys", &mpq.DialOptions{Dir: dir, Key: []byte(tc.listener)})
				if err != nil {
					t.Fatalf("Dial with the right key after a failure: %v", err)
				}
				d.Close()
				if a := <-acc; a.err != nil {
					t.Fatalf("Accept after a failure: %v", a.err)
				} else {
					a.c.Close()
				}
			}
			l.Close()
		})
	}
}

func TestListenStaleAndLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "old.sock")
	// A socket file whose listener is gone.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	ctx := ctxT(t, 10*time.Second)
	if _, err := mpq.Dial(ctx, "old", &mpq.DialOptions{Dir: dir}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dial of a stale socket: got %v; want fs.ErrNotExist", err)
	}
	l := listen(t, "old", &mpq.ListenOptions{Dir: dir})
	if _, err := mpq.Listen("old", &mpq.ListenOptions{Dir: dir}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Listen on a live name: got %v; want fs.ErrExist", err)
	}
	// The live listener still works.
	acc := acceptAsync(ctx, l)
	d, err := mpq.Dial(ctx, "old", &mpq.DialOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if a := <-acc; a.err != nil {
		t.Fatal(a.err)
	} else {
		a.c.Close()
	}
	if _, err := mpq.Dial(ctx, "missing", &mpq.DialOptions{Dir: dir}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dial of a missing name: got %v; want fs.ErrNotExist", err)
	}
	// A regular file in the way is not replaced.
	os.WriteFile(filepath.Join(dir, "file.sock"), []byte("x"), 0o600)
	if _, err := mpq.Listen("file", &mpq.ListenOptions{Dir: dir}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Listen over a regular file: got %v; want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "file.sock")); string(b) != "x" {
		t.Errorf("the regular file was changed")
	}
}

func TestListenBadInput(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t, 10*time.Second)
	for _, name := range []string{"", "a/b", "..", ".hidden", strings.Repeat("n", 120)} {
		if _, err := mpq.Listen(name, &mpq.ListenOptions{Dir: dir}); !errors.Is(err, mpq.ErrInvalidName) {
			t.Errorf("Listen(%q): got %v; want ErrInvalidName", name, err)
		}
		if _, err := mpq.Dial(ctx, name, &mpq.DialOptions{Dir: dir}); !errors.Is(err, mpq.ErrInvalidName) {
			t.Errorf("Dial(%q): got %v; want ErrInvalidName", name, err)
		}
	}
	for _, o := range []*mpq.ListenOptions{{Dir: dir, Capacity: -1}, {Dir: dir, HandshakeTimeout: -1}, {Dir: dir, Capacity: 1 << 50}} {
		if _, err := mpq.Listen("x", o); !errors.Is(err, mpq.ErrInvalidOptions) {
			t.Errorf("Listen with %+v: got %v; want ErrInvalidOptions", *o, err)
		}
	}
}

func TestAcceptCancelAndClose(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	l := listen(t, "c", &mpq.ListenOptions{Dir: dir})
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(short); err != context.DeadlineExceeded {
		t.Errorf("Accept with a deadline: got %v; want DeadlineExceeded", err)
	}
	acc := acceptAsync(context.Background(), l)
	time.Sleep(20 * time.Millisecond)
	l.Close()
	if a := <-acc; !errors.Is(a.err, mpq.ErrClosed) {
		t.Errorf("Accept at Close: got %v; want ErrClosed", a.err)
	}
}

// Peers that connect and say nothing, or say something else, are turned
// away within the handshake timeout, and the listener goes on.
func TestAcceptBadPeers(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	l := listen(t, "b", &mpq.ListenOptions{Dir: dir, HandshakeTimeout: 100 * time.Millisecond})
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct {
		name string
		send []byte
		want error
	}{
		{"silent", nil, context.DeadlineExceeded},
		{"garbage", []byte(strings.Repeat("garbage!", 9)), mpq.ErrHandshake},
		{"short then gone", []byte("MPQL"), mpq.ErrHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := acceptAsync(ctx, l)
			raw, err := net.Dial("unix", l.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if tc.send != nil {
				raw.Write(tc.send)
				if len(tc.send) < 10 {
					raw.Close()
				}
			}
			if a := <-acc; !errors.Is(a.err, tc.want) {
				t.Fatalf("Accept: got %v; want %v", a.err, tc.want)
			}
		})
	}
	// Fake listeners: one that speaks another protocol, one that claims
	// success without knowing the key.
	for _, tc := range []struct {
		name  string
		hello []byte
		want  error
	}{
		{"garbage hello", []byte(strings.Repeat("x", 56)), mpq.ErrHandshake},
		{"fake success", append([]byte("MPQL\x02\x00\x01\x00"), make([]byte, 48)...), mpq.ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fdir := t.TempDir()
			ln, err := net.Listen("unix", filepath.Join(fdir, "fake.sock"))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.Write(tc.hello)
				io.ReadFull(c, make([]byte, 88))
				c.Write(make([]byte, 40)) // status ok, MAC all zeros, no rings
				io.ReadAll(c)
			}()
			if _, err := mpq.Dial(ctx, "fake", &mpq.DialOptions{Dir: fdir, Key: []byte("k")}); !errors.Is(err, tc.want) {
				t.Fatalf("Dial: got %v; want %v", err, tc.want)
			}
		})
	}
}

// A process of another user (nobody) dials, with nothing done to the
// socket or its directory but what ListenOptions say: with its uid in
// AllowUIDs it connects and talks; with AllowUIDs that do not list it, it
// reaches the handshake and is turned away with ErrPeerRejected on both
// sides; without AllowUIDs the socket is closed to it (fs.ErrPermission,
// saying what to do), and the listener does not even see it.
func TestListenOtherUser(t *testing.T) {
	nobody, nogroup := testutil.Nobody(t)
	dir := testutil.Public(t)
	ctx := ctxT(t, 60*time.Second)
	for _, tc := range []struct {
		name  string
		allow []int
		mode  fs.FileMode // of the socket file
		say   string      // the dialer's verdict
		want  error       // Accept's
	}{
		{"allowed", []int{nobody}, 0o666, "connected", nil},
		{"others allowed", []int{nobody + 1}, 0o666, "rejected", mpq.ErrPeerRejected},
		{"none allowed", nil, 0o600, "permission", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, "uid", &mpq.ListenOptions{Dir: dir, AllowUIDs: tc.allow, Key: []byte("k")})
			if fi, err := os.Lstat(l.Path()); err != nil || fi.Mode().Perm() != tc.mode {
				t.Fatalf("socket file: got %v, %v; want mode %v", fi.Mode(), err, tc.mode)
			}
			c := testutil.Start(t, "dialer", testutil.AsUser(nobody, nogroup),
				testutil.Env("MPQ_TEST_DIR="+dir, "MPQ_TEST_LISTEN=uid", "MPQ_TEST_KEY=k"))
			line := c.Expect("", 30*time.Second)
			if !strings.HasPrefix(line, tc.say) {
				t.Fatalf("the dialer of uid %d: got %q; want %q", nobody, line, tc.say)
			}
			if tc.say == "permission" && !strings.Contains(line, "AllowUIDs") {
				t.Errorf("the dialer's error does not say what to do: %q", line)
			}
			switch tc.say {
			case "connected":
				a := <-acceptAsync(ctx, l)
				if a.err != nil {
					t.Fatal(a.err)
				}
				if err := a.c.Send(ctx, []byte("hi")); err != nil {
					t.Fatal(err)
				}
				if got, err := a.c.Recv(ctx); err != nil || string(got) != "hi" {
					t.Fatalf("echo from the other user: got %q, %v", got, err)
				}
				a.c.Close()
			case "rejected":
				if a := <-acceptAsync(ctx, l); !errors.Is(a.err, tc.want) {
					t.Fatalf("Accept: got %v, %v; want %v", a.c, a.err, tc.want)
				}
			case "permission":
				// The stranger left nothing for Accept: the next outcome is
				// the connection of a process of this user.
				acc := acceptAsync(ctx, l)
				d, err := mpq.Dial(ctx, "uid", &mpq.DialOptions{Dir: dir, Key: []byte("k")})
				if err != nil {
					t.Fatal(err)
				}
				d.Close()
				if a := <-acc; a.err != nil {
					t.Fatalf("Accept after a stranger was kept out: %v", a.err)
				} else {
					a.c.Close()
				}
			}
			c.Succeed(30 * time.Second)
			l.Close()
		})
	}
}

// AllowUIDs in a directory an allowed user cannot search is refused, with
// an error that names the directory and says what to do; the default
// per-user directory (0700) is one. Root (uid 0) needs no permission.
func TestListenAllowUIDsReach(t *testing.T) {
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	public := testutil.Public(t)
	groupOnly := filepath.Join(public, "group")
	if err := os.Mkdir(groupOnly, 0o710); err != nil {
		t.Fatal(err)
	}
	me := os.Getuid()
	for _, tc := range []struct {
		name  string
		opts  mpq.ListenOptions
		want  error
		where string // the directory the error names
	}{
		{"private dir", mpq.ListenOptions{Dir: private, AllowUIDs: []int{me + 1000}}, mpq.ErrInvalidOptions, private},
		{"below a private dir", mpq.ListenOptions{Dir: filepath.Join(private, "sub"), AllowUIDs: []int{me + 1000}}, mpq.ErrInvalidOptions, private},
		{"default dir", mpq.ListenOptions{AllowUIDs: []int{me + 1000}}, mpq.ErrInvalidOptions, ""},
		{"private dir, root allowed", mpq.ListenOptions{Dir: private, AllowUIDs: []int{0}}, nil, ""},
		{"public dir", mpq.ListenOptions{Dir: public, AllowUIDs: []int{me + 1000}}, nil, ""},
		{"group-searchable dir", mpq.ListenOptions{Dir: groupOnly, AllowUIDs: []int{me + 1000}}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Dir != "" && tc.opts.Dir != private && tc.opts.Dir != public && tc.opts.Dir != groupOnly {
				if err := os.Mkdir(tc.opts.Dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			l, err := mpq.Listen("reach", &tc.opts)
			if l != nil {
				l.Close()
			}
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Listen: got %v; want %v", err, tc.want)
			}
			if err != nil && (!strings.Contains(err.Error(), tc.where) || !strings.Contains(err.Error(), "chmod")) {
				t.Errorf("Listen: got %q; want it to name %s and say what to do", err, tc.where)
			}
		})
	}
}

// A dialing process killed mid-conversation gives the listener's side EOF.
func TestListenDialerKilled(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	ctx := ctxT(t, 30*time.Second)
	l := listen(t, "kill", &mpq.ListenOptions{Dir: dir, Key: []byte("k")})
	acc := acceptAsync(ctx, l)
	c := testutil.Start(t, "dialer", testutil.Env("MPQ_TEST_DIR="+dir, "MPQ_TEST_LISTEN=kill", "MPQ_TEST_KEY=k"))
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	c.Expect("connected", 30*time.Second)
	if err := a.c.Send(ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.Recv(ctx); err != nil || string(got) != "one" {
		t.Fatalf("echo: got %q, %v", got, err)
	}
	c.Kill()
	if _, err := a.c.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after the dialer was killed: got %v; want io.EOF", err)
	}
}

// The bytes on the socket are the format internal/handshake documents and
// pins (version 2): the listener's hello and its verdict on a reply of
// another version, the dialer's reply with its namespaces and its proof of
// the key, bound as the package comment says (checked here with a MAC
// computed from that description, not the package's code), and its final
// word on a listener that does not prove it holds the key.
func TestHandshakeWire(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	key := []byte("k")
	t.Run("listener", func(t *testing.T) {
		l := listen(t, "wire", &mpq.ListenOptions{Dir: t.TempDir(), Key: key})
		acc := acceptAsync(ctx, l)
		raw, err := net.Dial("unix", l.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(20 * time.Second))
		hello := make([]byte, 56)
		if _, err := io.ReadFull(raw, hello); err != nil {
			t.Fatal(err)
		}
		if got, want := hello[:8], []byte("MPQL\x02\x00\x01\x00"); !bytes.Equal(got, want) {
			t.Errorf("hello: got %q; want %q, the nonce and the namespaces", got, want)
		}
		if runtime.GOOS == "linux" {
			if got, want := hello[40:], namespaces(t); !bytes.Equal(got, want) {
				t.Errorf("hello's namespaces: got %x; want %x", got, want)
			}
		}
		raw.Write(append([]byte("MPQL\x03\x01\x00\x00"), make([]byte, 80)...))
		verdict, _ := io.ReadAll(raw)
		if want := append([]byte{3}, make([]byte, 39)...); !bytes.Equal(verdict, want) {
			t.Errorf("verdict on version 3: got %x; want %x", verdict, want)
		}
		a := <-acc
		if !errors.Is(a.err, mpq.ErrHandshake) || !strings.Contains(a.err.Error(), "the peer speaks another protocol (version 3)") {
			t.Errorf("Accept: got %v; want ErrHandshake, another protocol (version 3)", a.err)
		}
	})
	t.Run("dialer", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the namespaces are read from /proc")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "wire.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		nonceL := bytes.Repeat([]byte{7}, 32)
		ns := namespaces(t)
		seen := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				seen <- nil
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			c.Write(append(append([]byte("MPQL\x02\x00\x01\x00"), nonceL...), ns...))
			got := make([]byte, 88+1)
			io.ReadFull(c, got[:88])
			c.Write(make([]byte, 40)) // status ok, a MAC of zeros, no rings
			io.ReadFull(c, got[88:])
			seen <- got
		}()
		if _, err := mpq.Dial(ctx, "wire", &mpq.DialOptions{Dir: dir, Key: key}); !errors.Is(err, mpq.ErrAuth) {
			t.Errorf("Dial: got %v; want ErrAuth", err)
		}
		got := <-seen
		if len(got) != 89 {
			t.Fatal("the fake listener saw no dialer")
		}
		reply, final := got[:88], got[88:]
		if want := []byte("MPQL\x02\x01\x00\x00"); !bytes.Equal(reply[:8], want) {
			t.Errorf("reply: got %q; want %q, the nonce, the namespaces and the MAC", reply[:8], want)
		}
		if !bytes.Equal(reply[40:56], ns) {
			t.Errorf("reply's namespaces: got %x; want %x", reply[40:56], ns)
		}
		// Both ends are this process, in one pid and user namespace: the
		// pids and uids are bound.
		pid, uid := uint64(os.Getpid()), uint64(os.Geteuid())
		var binding []byte
		binding = append(binding, ns...)           // the listener's namespaces
		binding = append(binding, reply[40:56]...) // the dialer's
		for _, v := range []uint64{uint64(st.Dev), st.Ino, pid, pid, uid, uid} {
			binding = binary.BigEndian.AppendUint64(binding, v)
		}
		h := hmac.New(sha256.New, key)
		h.Write([]byte("mpq dialer v2"))
		h.Write(nonceL)
		h.Write(reply[8:40])
		h.Write(binding)
		if mac := h.Sum(nil); !bytes.Equal(reply[56:], mac) {
			t.Errorf("reply MAC: got %x; want %x", reply[56:], mac)
		}
		if !bytes.Equal(final, []byte{2}) {
			t.Errorf("final word on a wrong listener MAC: got %x; want 02", final)
		}
	})
}

// namespaces returns this process's namespaces as the handshake sends
// them: the inodes of /proc/self/ns/pid and /proc/self/ns/user, 8 bytes
// each, big-endian.
func namespaces(t testing.TB) []byte {
	t.Helper()
	var b []byte
	for _, name := range []string{"pid", "user"} {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/self/ns/"+name, &st); err != nil {
			t.Fatal(err)
		}
		b = binary.BigEndian.AppendUint64(b, st.Ino)
	}
	return b
}

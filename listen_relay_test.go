package mpq_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("relay", runRelay)
}

// runRelay is a process of an allowed user without the key: it listens on
// the socket MPQ_TEST_RELAY, says "ready", and for the one process that
// dials it dials the real listener at MPQ_TEST_SOCK and copies the bytes
// both ways, descriptors (SCM_RIGHTS) included, until either side leaves.
// Then it says "fds N": how many descriptors the listener sent it.
func runRelay() error {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: os.Getenv("MPQ_TEST_RELAY"), Net: "unix"})
	if err != nil {
		return err
	}
	testutil.Say("ready")
	dialer, err := ln.AcceptUnix()
	if err != nil {
		return err
	}
	nc, err := net.Dial("unix", os.Getenv("MPQ_TEST_SOCK"))
	if err != nil {
		return err
	}
	listener := nc.(*net.UnixConn)
	var fromListener atomic.Int64
	var wg sync.WaitGroup
	relay := func(from, to *net.UnixConn, fds *atomic.Int64) {
		defer wg.Done()
		defer to.CloseWrite()
		buf, oob := make([]byte, 64<<10), make([]byte, 4096)
		for {
			n, oobn, _, _, err := from.ReadMsgUnix(buf, oob)
			if n == 0 && oobn == 0 || err != nil {
				return
			}
			var passed []int
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					got, _ := unix.ParseUnixRights(&m)
					passed = append(passed, got...)
				}
			}
			if fds != nil {
				fds.Add(int64(len(passed)))
			}
			if _, _, err := to.WriteMsgUnix(buf[:n], oob[:oobn], nil); err != nil {
				return
			}
			for _, fd := range passed {
				unix.Close(fd)
			}
		}
	}
	wg.Add(2)
	go relay(listener, dialer, &fromListener)
	go relay(dialer, listener, nil)
	wg.Wait()
	testutil.Say("fds %d", fromListener.Load())
	return nil
}

// A process of the same user as the listener and the dialer, without the
// key, relays the handshake between them (listening on a name of its own,
// that the dialer was told to dial). With a key, the Dial and the Accept
// fail with ErrAuth and the relay receives no ring descriptor. Without a
// key, the same relay connects the two and passes the rings: the relay is
// one, and only the key's MACs, bound to who is at each end, stop it.
func TestListenRelay(t *testing.T) {
	testutil.CheckGoroutines(t)
	for _, tc := range []struct {
		name string
		key  string
		say  string // the dialer's verdict
		want error  // Accept's
		fds  string // what the relay received
	}{
		{"with a key", "k", "auth", mpq.ErrAuth, "fds 0"},
		{"without a key", "", "connected", nil, "fds 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := ctxT(t, 60*time.Second)
			l := listen(t, "real", &mpq.ListenOptions{Dir: dir, Key: []byte(tc.key)})
			acc := acceptAsync(ctx, l)
			relay := testutil.Start(t, "relay", testutil.Env("MPQ_TEST_SOCK="+l.Path(), "MPQ_TEST_RELAY="+filepath.Join(dir, "relay.sock")))
			relay.Expect("ready", 30*time.Second)
			d := testutil.Start(t, "dialer", testutil.Env("MPQ_TEST_DIR="+dir, "MPQ_TEST_LISTEN=relay", "MPQ_TEST_KEY="+tc.key))
			if line := d.Expect("", 30*time.Second); !strings.HasPrefix(line, tc.say) {
				t.Fatalf("the dialer through the relay: got %q; want %s", line, tc.say)
			}
			a := <-acc
			if !errors.Is(a.err, tc.want) || (a.err == nil) != (tc.want == nil) {
				t.Fatalf("Accept through the relay: got %v; want %v", a.err, tc.want)
			}
			if a.c != nil {
				if err := a.c.Send(ctx, []byte("through")); err != nil {
					t.Fatal(err)
				}
				if got, err := a.c.Recv(ctx); err != nil || string(got) != "through" {
					t.Fatalf("echo through the relay's rings: got %q, %v", got, err)
				}
				a.c.Close()
			}
			d.Succeed(30 * time.Second)
			if got := relay.Expect("fds", 30*time.Second); got != tc.fds {
				t.Errorf("the relay: got %q; want %q", got, tc.fds)
			}
			relay.Succeed(30 * time.Second)
		})
	}
}
